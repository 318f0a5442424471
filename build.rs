// schemas/ is built into the binary (src/schemas.rs, include_dir!): rebuild when a
// file in it changes, which the macro alone does not ask for.
fn main() {
    println!("cargo:rerun-if-changed=schemas");
}
