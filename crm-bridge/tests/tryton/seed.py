"""Seed a fresh Tryton 7.0 database for the voxbridge crm-bridge tests.

Run with the Tryton venv's python after `trytond-admin ... -u sale`:

    python seed.py CONFIG_FILE DATABASE

Creates the demo company (CNY), links the admin user to it (otherwise
stock reads as 0), customers with phone contact mechanisms typed the way
people type them, goods with codes and stock received into the warehouse,
and sale orders in several states. Prints a JSON summary on stdout.
"""

import datetime
import json
import sys
from decimal import Decimal

from proteus import Model, Wizard, config


def main(conf, database):
    config.set_trytond(database, config_file=conf)

    Currency = Model.get('currency.currency')
    cny, = Currency.find([('code', '=', 'CNY')]) or [None]
    if cny is None:
        cny = Currency(name='Chinese Yuan', code='CNY', symbol='¥', digits=2,
                       rounding=Decimal('0.01'))
        cny.save()

    Party = Model.get('party.party')
    Company = Model.get('company.company')
    company_party = Party(name='Voxbridge Demo Ltd')
    company_party.save()
    company = Company(party=company_party, currency=cny)
    company.save()

    User = Model.get('res.user')
    admin, = User.find([('login', '=', 'admin')])
    admin.companies.append(Company(company.id))
    admin.company = Company(company.id)
    admin.save()
    config.get_config()._context = User.get_preferences(True, {})

    Category = Model.get('party.category')
    tiers = {}
    for name in ('Gold', 'Silver'):
        c = Category(name=name)
        c.save()
        tiers[name] = c

    # National numbers are read in the country of the party's address
    # (Tryton validates phone numbers with phonenumbers).
    Country = Model.get('country.country')
    countries = {}
    for code, name in [('CN', 'China'), ('US', 'United States')]:
        found = Country.find([('code', '=', code)])
        countries[code] = found[0] if found else Country(name=name, code=code)
        countries[code].save()

    Lang = Model.get('ir.lang')
    langs = {l.code: l for l in Lang.find([('code', 'in', ['en', 'zh_CN'])])}

    customers = {}
    for code, name, phones, email, tier, lang, country in [
        ('CUST-001', 'Li Wei', [('mobile', '+86 138 0013 8000')],
         'li.wei@example.cn', 'Gold', 'zh_CN', 'CN'),
        ('CUST-002', 'Wang Fang', [('phone', '010 6552 9988'), ('mobile', '139 1234 5678')],
         'wang.fang@example.cn', 'Silver', 'zh_CN', 'CN'),
        ('CUST-003', 'Alice Johnson', [('phone', '(201) 555-0123')],
         None, None, 'en', 'US'),
    ]:
        p = Party(name=name, code=code)
        p.addresses[0].country = Country(countries[country].id)
        if lang in langs:
            p.lang = langs[lang]
        for kind, value in phones:
            p.contact_mechanisms.new(type=kind, value=value)
        if email:
            p.contact_mechanisms.new(type='email', value=email)
        if tier:
            p.categories.append(Category(tiers[tier].id))
        p.addresses[0].street = '1 Example Road'
        p.save()
        customers[code] = p

    Uom = Model.get('product.uom')
    unit, = Uom.find([('name', '=', 'Unit')])
    Template = Model.get('product.template')
    products = {}
    for code, name, price, qty in [
        ('KET-BLU-17', 'Blue Electric Kettle 1.7L', '399', 42),
        ('KET-RED-17', 'Red Electric Kettle 1.7L', '399', 0),
        ('TOA-SS-2', 'Stainless Steel Toaster 2-Slice', '259', 17),
        ('ESP-PRO-1', 'Espresso Machine Pro', '1299', 5),
    ]:
        t = Template(name=name, type='goods', default_uom=unit,
                     list_price=Decimal(price), salable=True, sale_uom=unit)
        t.products[0].suffix_code = code
        t.save()
        products[code] = (t.products[0], qty)

    Location = Model.get('stock.location')
    supplier, = Location.find([('type', '=', 'supplier')])
    warehouse, = Location.find([('type', '=', 'warehouse')])
    storage = warehouse.storage_location
    Move = Model.get('stock.move')
    moves = []
    for code, (product, qty) in products.items():
        if not qty:
            continue
        m = Move(product=product, from_location=supplier, to_location=storage,
                 quantity=qty, unit=unit, unit_price=Decimal('100'),
                 currency=cny, company=company)
        m.save()
        moves.append(m)
    Move.click(moves, 'do')

    # Reserved for an order to ship later: the forecast drops, on-hand not.
    out = Move(product=products['KET-BLU-17'][0], from_location=storage,
               to_location=Location.find([('type', '=', 'customer')])[0],
               quantity=2, unit=unit, unit_price=Decimal('399'), currency=cny,
               company=company,
               planned_date=datetime.date.today() + datetime.timedelta(days=3))
    out.save()

    Sale = Model.get('sale.sale')
    sales = []
    for party, lines, reference, action in [
        ('CUST-001', [('KET-BLU-17', 1)], 'WEB-1001', 'quote'),
        ('CUST-001', [('ESP-PRO-1', 1), ('TOA-SS-2', 2)], 'WEB-1002', None),
        ('CUST-002', [('TOA-SS-2', 1)], 'WEB-1003', 'cancel'),
    ]:
        s = Sale(party=customers[party], reference=reference,
                 invoice_method='manual', shipment_method='manual',
                 sale_date=datetime.date(2026, 11, 2) if action else datetime.date(2026, 11, 18))
        for code, qty in lines:
            product = products[code][0]
            line = s.lines.new(product=product, quantity=qty)
            line.unit_price = product.list_price
        s.save()
        if action == 'quote':
            s.click('quote')
        elif action == 'cancel':
            s.click('cancel')
        s.reload()
        sales.append({'id': s.id, 'number': s.number, 'reference': reference,
                      'state': s.state, 'party': party})

    print(json.dumps({
        'customers': {c: p.id for c, p in customers.items()},
        'warehouse': warehouse.id,
        'sales': sales,
    }))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
