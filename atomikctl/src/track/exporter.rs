//! `atomikctl exporter --listen ADDR`: a live Prometheus endpoint, `/metrics`.
//!
//! A sampling thread takes a [`Monitor`] sample every `--interval` and accumulates the page
//! counts (written, changed, COW breaks, …) into monotonic `_total` counters, so nothing
//! between two scrapes is lost whatever the scrape interval; a scrape renders the latest
//! sample (no /proc reading on the request path). The HTTP side is axum on a one-thread
//! tokio runtime: tokio is already in atomikctl for NATS, and axum is the well-kept server
//! on it (content negotiation between Prometheus text and OpenMetrics is ours).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use clap::Args;

use atomik::track::monitor::{Monitor, Snapshot};

use super::columns::{select, Column, Unit};
use super::metrics::{render, Format, Totals};
use super::MonitorArgs;
use crate::BadInput;

#[derive(Args, Debug)]
pub struct ExporterArgs {
    /// Address to serve /metrics on, e.g. 127.0.0.1:9464 (port 0: any free port; the
    /// address bound is printed on stderr).
    #[arg(long)]
    pub listen: String,
    /// Seconds between samples (the counters advance at each).
    #[arg(long, default_value_t = 5.0)]
    pub interval: f64,
    #[command(flatten)]
    pub monitor: MonitorArgs,
}

/// What a scrape serves: the latest sample and the counters accumulated up to it.
#[derive(Default)]
pub struct Exported {
    snap: Option<Snapshot>,
    totals: Totals,
    samples: u64,
}

impl Exported {
    /// The exposition in `format`.
    pub fn render(&self, cols: &[&Column], format: Format) -> String {
        let Some(snap) = &self.snap else {
            return if format == Format::OpenMetrics { "# EOF\n".into() } else { String::new() };
        };
        let mut s = render(snap, cols, Some(&self.totals), format);
        let name = "atomik_exporter_samples";
        let tail = format!(
            "# TYPE {n} counter\n# HELP {n} Samples taken since the exporter started.\n{name}_total {}\n",
            self.samples,
            n = if format == Format::Prometheus { format!("{name}_total") } else { name.to_owned() }
        );
        match s.strip_suffix("# EOF\n") {
            Some(body) => s = format!("{body}{tail}# EOF\n"),
            None => s.push_str(&tail),
        }
        s
    }

    /// Takes in one sample.
    pub fn add(&mut self, snap: Snapshot) {
        self.totals.add(&snap);
        self.samples += 1;
        self.snap = Some(snap);
    }
}

/// The columns an exporter serves: the states as gauges and the kernel's counters; the
/// per-second rates are left to the `_total` counters (`rate()` in PromQL).
pub fn exported_columns(keys: &[String]) -> Result<Vec<&'static Column>, BadInput> {
    Ok(select(keys)?.into_iter().filter(|c| c.unit != Unit::Rate).collect())
}

pub fn run(args: ExporterArgs) -> Result<()> {
    if !(args.interval.is_finite() && args.interval > 0.0) {
        return Err(BadInput(format!("--interval {} must be a positive number", args.interval)).into());
    }
    let addr: SocketAddr = args.listen.parse().map_err(|e| {
        BadInput(format!("--listen {:?}: not an address such as 127.0.0.1:9464 ({e})", args.listen))
    })?;
    let cols = exported_columns(&args.monitor.columns)?;
    let opts = args.monitor.options()?;
    let listener = std::net::TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))?;
    listener.set_nonblocking(true)?;
    eprintln!("atomikctl exporter: serving http://{}/metrics", listener.local_addr()?);
    super::stop_on_signals();

    let state = Arc::new(Mutex::new(Exported::default()));
    let sampler = {
        let state = state.clone();
        let mut m = Monitor::new(opts);
        let interval = args.interval;
        std::thread::spawn(move || -> Result<()> {
            loop {
                let snap = m.sample()?;
                state.lock().unwrap_or_else(|e| e.into_inner()).add(snap);
                if !super::sleep(interval) {
                    return Ok(());
                }
            }
        })
    };

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(serve(listener, state, cols))?;
    sampler.join().map_err(|_| anyhow::anyhow!("the sampling thread panicked"))?
}

async fn serve(
    listener: std::net::TcpListener,
    state: Arc<Mutex<Exported>>,
    cols: Vec<&'static Column>,
) -> Result<()> {
    use axum::http::{header, HeaderMap};
    use axum::routing::get;
    let metrics = move |headers: HeaderMap| {
        let state = state.clone();
        let cols = cols.clone();
        async move {
            let om = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|a| a.contains("application/openmetrics-text"));
            let (format, ctype) = if om {
                (Format::OpenMetrics, "application/openmetrics-text; version=1.0.0; charset=utf-8")
            } else {
                (Format::Prometheus, "text/plain; version=0.0.4; charset=utf-8")
            };
            let body = state.lock().unwrap_or_else(|e| e.into_inner()).render(&cols, format);
            ([(header::CONTENT_TYPE, ctype)], body)
        }
    };
    let app = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/", get(|| async { "atomikctl exporter: metrics at /metrics\n" }));
    let listener = tokio::net::TcpListener::from_std(listener)?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            while !super::stopped() {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        })
        .await?;
    Ok(())
}
