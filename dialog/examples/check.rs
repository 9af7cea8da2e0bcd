fn main() {
    let path = std::env::args().nth(1).unwrap();
    match voxbridge_dialog::load::load_file(std::path::Path::new(&path)) {
        Err(p) => p.iter().for_each(|p| println!("{p}")),
        Ok(l) => voxbridge_dialog::validate::validate(&l, None)
            .iter()
            .for_each(|p| println!("{p}")),
    }
}
