// schemas/ is built into the binary (src/schemas.rs, include_dir!) and migrations/ too
// (db::MIGRATIONS, embed_migrations!): rebuild when a file in either changes, which
// the macros alone do not ask for.
fn main() {
    println!("cargo:rerun-if-changed=schemas");
    println!("cargo:rerun-if-changed=migrations");
}
