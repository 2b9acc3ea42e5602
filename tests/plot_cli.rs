//! Attention plots from a real trace, through the CLI.

mod common;

use common::*;
use std::process::Command;

#[test]
fn run_plot_and_plot_command_write_decodable_images() {
    let _g = compute_lock();
    let dir = std::env::temp_dir().join(format!("spotlight-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("attention.png");
    let trace = dir.join("trace.jsonl");
    let out = Command::new(bin())
        .args([
            "run",
            "--model",
            model_path().to_str().unwrap(),
            "--temp",
            "0",
            "--n-predict",
            "12",
            "--threads",
            "2",
        ])
        .args([
            "--alpha",
            "0.1",
            "--granularity",
            "head",
            "--trace",
            trace.to_str().unwrap(),
            "--plot",
            png.to_str().unwrap(),
        ])
        .arg("Write a short poem about the sea. **Use only lowercase letters.**")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let img = image::open(&png).expect("the plot decodes as PNG");
    assert_eq!((img.width(), img.height()), (1200, 700));
    // a plot that is not blank: many distinct colours (heatmap cells, bars, text)
    let rgb = img.to_rgb8();
    let colours: std::collections::HashSet<[u8; 3]> = rgb.pixels().map(|p| p.0).collect();
    assert!(colours.len() > 50, "the plot looks empty ({} colours)", colours.len());

    let svg = dir.join("attention.svg");
    let out = Command::new(bin())
        .args(["plot", trace.to_str().unwrap(), "--output", svg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg") && text.contains("width=\"1200\"") && text.contains("τ = 0.1"));

    let bad = Command::new(bin())
        .args(["plot", trace.to_str().unwrap(), "--output", "x.gif"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains(".png or .svg"));
}
