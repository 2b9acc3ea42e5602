//! `spotlight serve`: the OpenAI-compatible server (see `spotlight::serve`).

use super::args::{ModelArgs, OnOff, OnOffAuto, SteerArgs};
use clap::Args;
use spotlight::llama::FlashAttn;
use spotlight::serve::request::SteerRequest;
use spotlight::serve::{serve as run_server, ServeOptions};

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Defaults for requests that do not set `spotlight.alpha` / `granularity` / `layers`.
    #[command(flatten)]
    pub steer: SteerArgs,
    /// Address to listen on (RPC-style caution: anything but loopback exposes the model).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 = any free port; the address is printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Require `Authorization: Bearer KEY` on the API endpoints (/health stays open).
    #[arg(long, value_name = "KEY", env = "SPOTLIGHT_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Slots: requests decoded at once as parallel sequences of one batch (also: -np).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub parallel: u32,
    /// Requests that may wait for a free slot; beyond that new requests get 503 + Retry-After.
    #[arg(long, default_value_t = 64)]
    pub queue: usize,
    /// Context size in tokens, shared by the slots (each gets ctx-size / parallel).
    #[arg(short = 'c', long, default_value_t = 8192)]
    pub ctx_size: u32,
    /// Logical batch size: prompt tokens computed per decode.
    #[arg(short = 'b', long, default_value_t = 2048)]
    pub batch_size: u32,
    /// Physical batch size (also: -ub).
    #[arg(long, default_value_t = 512)]
    pub ubatch_size: u32,
    /// Flash attention: `on` steers on the flash-attention path; `auto` means off, whose explicit
    /// attention steers at less cost on the CPU.
    #[arg(long, value_enum, default_value_t = OnOffAuto::Auto)]
    pub flash_attn: OnOffAuto,
    /// `**text**` markup in messages, for requests that do not set `spotlight.markup`.
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    pub markup: OnOff,
    /// Model name reported by /v1/models [default: the file name without .gguf].
    #[arg(long)]
    pub alias: Option<String>,
}

pub fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    if args.host != "127.0.0.1" && args.host != "localhost" && args.host != "::1" {
        eprintln!(
            "warning: listening on {} makes the model reachable from other machines{}",
            args.host,
            if args.api_key.is_none() {
                " without an API key (--api-key)"
            } else {
                ""
            }
        );
    }
    let model = super::load_model(&args.model, true)?;
    args.steer
        .layers
        .validate(model.n_layer())
        .map_err(anyhow::Error::msg)?;
    let model_name = args.alias.clone().unwrap_or_else(|| {
        model
            .path()
            .file_stem()
            .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned())
    });
    let options = ServeOptions {
        host: args.host.clone(),
        port: args.port,
        api_key: args.api_key.clone(),
        model_name,
        slots: args.parallel as usize,
        queue: args.queue,
        n_ctx: args.ctx_size,
        n_batch: args.batch_size,
        n_ubatch: args.ubatch_size,
        threads: super::threads(args.model.threads),
        flash_attn: match args.flash_attn {
            OnOffAuto::On => FlashAttn::On,
            OnOffAuto::Off => FlashAttn::Off,
            OnOffAuto::Auto => FlashAttn::Auto,
        },
        steer_defaults: SteerRequest {
            alpha: args.steer.alpha,
            prefill_alpha: args.steer.prefill_alpha,
            decode_alpha: args.steer.decode_alpha,
            granularity: args.steer.granularity,
            layers: args.steer.layers.clone(),
            markup: args.markup == OnOff::On,
            highlights: Vec::new(),
            trace: false,
        },
    };
    // the server runs until interrupted: the model lives as long as the process
    let model: &'static _ = Box::leak(Box::new(model));
    let slots = options.slots;
    run_server(model, options, |addr| {
        eprintln!("spotlight serve: listening on http://{addr} ({slots} slots); Ctrl-C stops");
    })
}
