//! The B4/B8 load client as its own binary; see `torsion_benches::client`.
//!
//! ```text
//! cargo run -p torsion-benches --release --bin echo_client -- --port P --conns 10 --size 64 --secs 1
//! ```

fn main() {
    std::process::exit(torsion_benches::client::main(
        std::env::args().skip(1).collect(),
    ));
}
