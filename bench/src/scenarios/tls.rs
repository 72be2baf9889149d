//! TLS connection setup per second: a new connection for every request.
//!
//! - mpnet-blocking with a pool that keeps nothing: TCP connect, TLS
//!   handshake, GET /1k, close, per request.
//! - ureq 3 likewise (no idle connections kept), for reference.
//! - The ceiling: rustls's own handshake rate in memory, one
//!   `ClientConnection` and one `ServerConnection` pumping bytes through a
//!   buffer on one thread, with the very configurations of the socket runs
//!   (mpnet's `tls::client_config` and the bench server's `ServerConfig`:
//!   same certificate (ECDSA P-256), same cipher suites, same session
//!   resumption), so a resumed handshake is compared with a resumed one.
//!   A full handshake (client resumption off) is noted as well.

use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, HandshakeKind, ServerConfig, ServerConnection};

use super::keepalive::{mpnet_get, ureq_get};
use super::{rate_single, row, take_turns, CpuLog, Ctx, Measure, ServerCpu};
use crate::clients;
use crate::report::median;

fn feed_server(s: &mut ServerConnection, mut data: &[u8]) -> Result<(), String> {
    while !data.is_empty() {
        s.read_tls(&mut data).map_err(|e| e.to_string())?;
        s.process_new_packets().map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn feed_client(c: &mut ClientConnection, mut data: &[u8]) -> Result<(), String> {
    while !data.is_empty() {
        c.read_tls(&mut data).map_err(|e| e.to_string())?;
        c.process_new_packets().map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// One handshake in memory, session tickets included; returns its kind
/// and the negotiated cipher suite.
pub fn handshake_in_memory(
    client: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
    name: &ServerName<'static>,
    buf: &mut Vec<u8>,
) -> Result<(Option<HandshakeKind>, Option<rustls::CipherSuite>), String> {
    let mut c = ClientConnection::new(client.clone(), name.clone()).map_err(|e| e.to_string())?;
    let mut s = ServerConnection::new(server.clone()).map_err(|e| e.to_string())?;
    // A TLS 1.3 handshake with tickets takes 3 flights; 16 rounds is ample.
    for _ in 0..16 {
        let mut moved = false;
        while c.wants_write() {
            buf.clear();
            c.write_tls(buf).map_err(|e| e.to_string())?;
            feed_server(&mut s, buf)?;
            moved = true;
        }
        while s.wants_write() {
            buf.clear();
            s.write_tls(buf).map_err(|e| e.to_string())?;
            feed_client(&mut c, buf)?;
            moved = true;
        }
        if !moved {
            break;
        }
    }
    if c.is_handshaking() || s.is_handshaking() {
        return Err("the in-memory handshake did not finish".into());
    }
    Ok((
        c.handshake_kind(),
        c.negotiated_cipher_suite().map(|s| s.suite()),
    ))
}

/// The TLS setup scenario.
pub(crate) fn tls_setup(c: &Ctx<'_>) -> Result<(), String> {
    let cfg = c.config;
    let url = c.server.url("/1k");
    let mpnet = clients::mpnet_blocking(c.server, clients::no_pool(), 64, &c.dir)?;
    let agent = clients::ureq_agent(c.server, 0);
    // The exact client configuration mpnet builds for this context.
    let ctx = clients::mpnet_ctx(c.server, 64, &c.dir)?;
    let client_cfg = mpnet_core::tls::client_config(&ctx, &mpnet_core::tls::TlsSources::system())
        .map_err(|e| e.to_string())?;
    let mut full_cfg = (*client_cfg).clone();
    full_cfg.resumption = rustls::client::Resumption::disabled();
    let full_cfg = Arc::new(full_cfg);
    let server_cfg = c.server.server_config().clone();
    let name = ServerName::try_from("127.0.0.1")
        .map_err(|e| e.to_string())?
        .to_owned();
    for _ in 0..5 {
        mpnet_get(&mpnet, &url)?;
        ureq_get(&agent, &url)?;
    }
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut buf_full = Vec::with_capacity(16 * 1024);
    let mut kinds = Vec::new();
    let cpu = CpuLog::new(3);
    let server_cpu = ServerCpu::new(3);
    let clients: Vec<(String, Measure<'_>)> = vec![
        (
            "mpnet-blocking".into(),
            Box::new(|| {
                server_cpu.around(0, |count| {
                    cpu.rate(0, cfg.budget, cfg.max_requests, || {
                        *count += 1;
                        mpnet_get(&mpnet, &url)
                    })
                })
            }),
        ),
        (
            "rustls in-memory handshake".into(),
            Box::new(|| {
                cpu.rate(1, cfg.budget, cfg.max_requests, || {
                    let (kind, suite) =
                        handshake_in_memory(&client_cfg, &server_cfg, &name, &mut buf)?;
                    kinds.push((kind, suite));
                    Ok(())
                })
            }),
        ),
        (
            "ureq 3".into(),
            Box::new(|| {
                server_cpu.around(2, |count| {
                    cpu.rate(2, cfg.budget, cfg.max_requests, || {
                        *count += 1;
                        ureq_get(&agent, &url)
                    })
                })
            }),
        ),
        (
            "rustls in-memory, full handshake".into(),
            Box::new(|| {
                rate_single(cfg.budget, cfg.max_requests, || {
                    handshake_in_memory(&full_cfg, &server_cfg, &name, &mut buf_full).map(drop)
                })
            }),
        ),
    ];
    let mut s = take_turns(cfg.runs, clients).into_iter();
    let m = s.next().unwrap_or_default();
    let ceiling = s.next().unwrap_or_default();
    let ureq = s.next().unwrap_or_default();
    let (m_rate, ceiling_rate, u_rate) = (m.clone(), ceiling.clone(), ureq.clone());
    let full = s.next().unwrap_or_default();
    let what = "TLS setup: new connection per GET 1 KiB";
    let (mc, cc, uc) = (
        cpu.series(0, &m),
        cpu.series(1, &ceiling),
        cpu.series(2, &ureq),
    );
    c.report.row(row(
        what,
        "conn/s",
        m.clone(),
        Some(ceiling),
        true,
        "≥ 0.9x rustls",
    ));
    c.report
        .row(row(what, "conn/s", m, Some(ureq), true, "info"));
    c.report.row(row(
        what,
        "CPU µs/conn (client thread; in-memory: both sides)",
        mc.clone(),
        Some(cc),
        false,
        "info",
    ));
    c.report
        .row(row(what, "client CPU µs/conn", mc, Some(uc), false, "info"));
    let (ms, us) = (server_cpu.series(0, &m_rate), server_cpu.series(2, &u_rate));
    let server_us = median(&ms.samples);
    c.report.row(row(
        what,
        "server CPU µs/conn (the bench server's threads)",
        ms,
        Some(us),
        false,
        "info",
    ));
    // What a sequential client has per connection at 0.9x the in-memory
    // rate, against what the server alone spends on one.
    if let (Some(ceiling), Some(server_us)) = (median(&ceiling_rate.samples), server_us) {
        let budget_us = 1e6 / (0.9 * ceiling);
        c.report.note(format!(
            "tls: at 0.9x of the in-memory rate, a connection may take {budget_us:.0} µs in all; \
             the server's own threads spend {server_us:.0} µs of CPU on each of mpnet's \
             (accept, its half of the handshake, the answer, the close), before any client \
             CPU or wake-up"
        ));
    }
    let resumed = kinds
        .iter()
        .filter(|(k, _)| matches!(k, Some(HandshakeKind::Resumed)))
        .count();
    let suite = kinds
        .last()
        .and_then(|(_, s)| *s)
        .map_or("-".into(), |s| format!("{s:?}"));
    c.report.note(format!(
        "tls: {resumed} of {} in-memory handshakes with mpnet's client config were resumed \
         (TLS 1.3 tickets, as on the sockets), cipher suite {suite}; a full handshake in \
         memory runs at {} per second",
        kinds.len(),
        median(&full.samples).map_or("-".into(), crate::report::fmt_num)
    ));
    Ok(())
}
