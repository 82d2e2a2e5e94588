fn main() {
    // `embed_migrations!` reads these folders at compile time.
    println!("cargo:rerun-if-changed=migrations");
}
