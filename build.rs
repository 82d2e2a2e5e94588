fn main() {
    // `embed_migrations!` reads these folders at compile time.
    println!("cargo:rerun-if-changed=migrations");
    // The contract tests run against Mangopay's own sandbox when its credentials are set at
    // build time (tests/it/contract.rs); otherwise they are listed as ignored.
    println!("cargo::rustc-check-cfg=cfg(mangopay_contract)");
    println!("cargo:rerun-if-env-changed=MANGOPAY_CONTRACT_CLIENT_ID");
    println!("cargo:rerun-if-env-changed=MANGOPAY_CONTRACT_API_KEY");
    let set = |name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    if set("MANGOPAY_CONTRACT_CLIENT_ID") && set("MANGOPAY_CONTRACT_API_KEY") {
        println!("cargo::rustc-cfg=mangopay_contract");
    }
}
