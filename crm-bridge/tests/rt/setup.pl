# Prepares a fresh Request Tracker 5 database for the voxbridge tests:
# queues, the user custom fields Phone and Tier, the ticket custom field
# "Voxbridge Key", two customers, and a bot user with an auth token, which
# is printed on stdout. Run with RT_SITE_CONFIG and RT_SITE_CONFIG_DIR set
# to the test's own configuration.
use strict;
use warnings;
use lib '/usr/share/request-tracker5/lib';
use RT;
RT::LoadConfig();
RT::Init();
my $system = RT->SystemUser;

sub check { my ($ok, $msg) = @_; die "setup failed: $msg\n" unless $ok; return $ok }

for my $name ('Support', 'Calls') {
    my $q = RT::Queue->new($system);
    check($q->Create(Name => $name, Description => "voxbridge $name"));
}
my %cf;
for my $def (['Phone', 'RT::User'], ['Tier', 'RT::User'], ['Voxbridge Key', 'RT::Queue-RT::Ticket']) {
    my ($name, $lookup) = @$def;
    my $f = RT::CustomField->new($system);
    check($f->Create(Name => $name, Type => 'FreeformSingle', LookupType => $lookup));
    # Applied globally: to every user, or to tickets of every queue.
    my $object = $lookup eq 'RT::User' ? RT::User->new($system) : RT::Queue->new($system);
    check($f->AddToObject($object));
    $cf{$name} = $f;
}

for my $u (['liwei', 'Li Wei', 'li.wei@example.cn', '+8613800138000', 'Gold'],
           ['alice', 'Alice Johnson', 'alice@example.com', '+15551234567', ''],
           ['nophone', 'No Phone', 'nophone@example.com', '', '']) {
    my ($name, $real, $email, $phone, $tier) = @$u;
    my $user = RT::User->new($system);
    check($user->Create(Name => $name, RealName => $real, EmailAddress => $email, Privileged => 0));
    check($user->AddCustomFieldValue(Field => $cf{Phone}->Id, Value => $phone)) if $phone;
    check($user->AddCustomFieldValue(Field => $cf{Tier}->Id, Value => $tier)) if $tier;
}

my $bot = RT::User->new($system);
check($bot->Create(Name => 'voxbridge', RealName => 'voxbridge bot',
                   EmailAddress => 'bot@voxbridge.test', Privileged => 1));
check($bot->PrincipalObj->GrantRight(Right => 'SuperUser', Object => RT->System));
my $token = RT::AuthToken->new($bot);
my ($ok, $msg, $auth) = $token->Create(Owner => $bot->Id, Description => 'voxbridge tests');
check($ok, $msg);
print "$auth\n";
