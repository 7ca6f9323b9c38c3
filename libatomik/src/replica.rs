//! Delta replication: replicas of a bank converge by exchanging causal delta-intervals.
//!
//! - [`model`]: the replica (per-origin accumulators and versions, idempotent joins).
//! - [`wire`]: the versioned, checksummed, compact wire format; [`varint`] its integers.
//! - [`persist`]: snapshot + write-ahead log, durable across `kill -9`.
//! - [`sim`]: the deterministic convergence simulator behind `atomikctl bench converge`.
//! - [`tcp`]: authenticated TCP anti-entropy; `nats` (feature `nats`): NATS JetStream, its
//!   payloads authenticated by [`nats_frame`], its connection options in `nats_connect`.
//! - [`origin_cap`]: joining at the live-origin cap without loops (both transports).
//! - [`binding`], [`mirror`]: the bank ↔ replica boundary, exact across crashes.
//! - [`daemon`]: the sync daemon that mirrors a bank and runs a transport.
//! - [`leave`]: `atomikctl sync leave`, retiring a replica through one adopting peer.

pub mod binding;
pub mod daemon;
#[doc(hidden)]
pub mod fuzz_check;
pub mod leave;
pub mod mirror;
pub mod model;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "nats")]
pub mod nats_connect;
pub mod nats_frame;
#[cfg(feature = "nats")]
pub mod nats_leave;
pub mod op;
pub mod origin_cap;
pub mod persist;
pub mod sim;
pub mod tcp;
pub mod tcp_peers;
pub mod varint;
pub mod wire;

pub use model::{Config, Joined, Replica, ReplicaError};
pub use op::Op;
pub use wire::{Delta, Message, WireError};
