//! Runs one contender of one benchmark case once, for profilers: see
//! `torsion_benches::probe`.
//!
//! ```text
//! cargo run -p torsion-benches --release --features compare --bin probe -- b6-idle-torsion 1000000
//! ```

#[global_allocator]
static ALLOCATOR: torsion_benches::alloc::Counting = torsion_benches::alloc::Counting;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_default();
    if name == "echo-client" {
        // B4 runs its load client as `current_exe() echo-client ...`.
        std::process::exit(torsion_benches::client::main(args.collect()));
    }
    let Some(n) = args.next().and_then(|n| n.parse::<usize>().ok()) else {
        eprintln!("usage: probe CASE N");
        for (case, what) in torsion_benches::probe::CASES {
            eprintln!("  {case:<22} N = {what}");
        }
        std::process::exit(2);
    };
    match torsion_benches::probe::run(&name, n) {
        Ok(v) => println!("{name} = {}", torsion_benches::harness::fmt_num(v)),
        Err(e) => {
            eprintln!("{name} failed: {e}");
            std::process::exit(1);
        }
    }
}
