#!/usr/bin/env node
// A WebSocket peer nobody here wrote: node's `ws` (installed by scripts/peers
// into $MPNET_PEERS/node), for the interop tests of SPEC §7.
//
//   node conformance/peers/node_ws_server.js --cert leaf.pem --key leaf-key.pem \
//       [--port 0] [--host 127.0.0.1] [--max-size BYTES] [--exit-on-eof]
//
// Serves WSS (plain ws:// when neither --cert nor --key is given) on
// 127.0.0.1 and prints one JSON line {"port": N} on stdout once listening.
// Runs until killed; with --exit-on-eof also until its stdin closes. The
// same paths and behaviour as py_ws_server.py:
//
// | path | behaviour |
// |---|---|
// | /echo | echoes every text and binary message |
// | /fragmented | sends "frag-1 中文 😀 end" as a text message in 4 frames (websockets adds an empty final frame: 5), then echoes; ?binary=1: bytes 0..=255 as a binary message in 4 frames |
// | /close?code=4001&reason=bye | closes with that code and reason after the client's first message; &immediate=1: right after the handshake |
// | /ping | sends a ping with payload "ping-1"; when its pong arrives sends the text "pong:ping-1"; then echoes (no pong in 10 s: close 4002) |
// | /big | sends one message of ?size=N bytes (default 1 MiB), text "abc..z" repeating, or ?binary=1 byte i = i % 251; then echoes |
// | /forbidden | rejects the handshake with HTTP 403 |
// | /subprotocol | accepts without selecting any subprotocol, even when the client asks for some |
// | anything else | 404 |
//
// On the other paths the first subprotocol the client offers is selected.
// `ws` is found in $MPNET_PEERS/node (default: target/peers/node of this repo).
'use strict';

const fs = require('fs');
const path = require('path');
const http = require('http');
const https = require('https');

const peers = process.env.MPNET_PEERS || path.join(__dirname, '..', '..', 'target', 'peers');
const { WebSocketServer } = require(require.resolve('ws', { paths: [path.join(peers, 'node')] }));

const FRAGMENTS = ['frag-1 ', '中文 ', '😀 ', 'end'];
const PATHS = new Set(['/echo', '/fragmented', '/close', '/ping', '/big', '/forbidden', '/subprotocol']);
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz';

function parseArgs(argv) {
  const opts = { host: '127.0.0.1', port: 0, maxSize: 64 << 20, exitOnEof: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--cert') opts.cert = next();
    else if (a === '--key') opts.key = next();
    else if (a === '--host') opts.host = next();
    else if (a === '--port') opts.port = Number(next());
    else if (a === '--max-size') opts.maxSize = Number(next());
    else if (a === '--exit-on-eof') opts.exitOnEof = true;
    else usage(`unknown argument ${a}`);
  }
  if (!!opts.cert !== !!opts.key) usage('give both --cert and --key (WSS) or neither (plain ws)');
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) usage('bad --port');
  return opts;
}

function usage(msg) {
  process.stderr.write(`node_ws_server.js: ${msg}\n` +
    'usage: node node_ws_server.js [--cert C --key K] [--port N] [--host H] [--max-size B] [--exit-on-eof]\n');
  process.exit(2);
}

function bigPayload(size, binary) {
  if (binary) {
    const b = Buffer.alloc(size);
    for (let i = 0; i < size; i++) b[i] = i % 251;
    return b;
  }
  return ALPHABET.repeat(Math.ceil(size / 26)).slice(0, size);
}

function echo(ws) {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
}

function sendFragments(ws, parts, binary) {
  parts.forEach((p, i) => ws.send(p, { binary, fin: i === parts.length - 1, compress: false }));
}

function onConnection(ws, req) {
  const url = new URL(req.url, 'http://x');
  const q = url.searchParams;
  switch (url.pathname) {
    case '/fragmented':
      if (q.get('binary') === '1') {
        const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
        sendFragments(ws, [0, 64, 128, 192].map((s) => all.subarray(s, s + 64)), true);
      } else {
        sendFragments(ws, FRAGMENTS, false);
      }
      echo(ws);
      break;
    case '/close': {
      const code = Number(q.get('code') || '1000');
      const reason = q.get('reason') || '';
      if (q.get('immediate') === '1') ws.close(code, reason);
      else ws.once('message', () => ws.close(code, reason));
      break;
    }
    case '/ping': {
      const timer = setTimeout(() => ws.close(4002, 'no pong'), 10000);
      ws.once('pong', (data) => {
        clearTimeout(timer);
        ws.send(`pong:${data.toString()}`);
        echo(ws);
      });
      ws.on('close', () => clearTimeout(timer));
      ws.ping('ping-1');
      break;
    }
    case '/big': {
      const size = Number(q.get('size') || String(1 << 20));
      const binary = q.get('binary') === '1';
      ws.send(bigPayload(size, binary), { binary });
      echo(ws);
      break;
    }
    default:
      echo(ws);
  }
  ws.on('error', () => {});
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const server = opts.cert
    ? https.createServer({ cert: fs.readFileSync(opts.cert), key: fs.readFileSync(opts.key) })
    : http.createServer();
  server.on('request', (req, res) => {
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('Not Found\n');
  });
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: opts.maxSize,
    perMessageDeflate: false,
    handleProtocols: (protocols, req) => {
      if (new URL(req.url, 'http://x').pathname === '/subprotocol') return false;
      const first = protocols.values().next();
      return first.done ? false : first.value;
    },
  });
  server.on('upgrade', (req, socket, head) => {
    const pathname = new URL(req.url, 'http://x').pathname;
    socket.on('error', () => {});
    if (!PATHS.has(pathname) || pathname === '/forbidden') {
      const [status, text] = pathname === '/forbidden' ? [403, 'Forbidden'] : [404, 'Not Found'];
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
        `Content-Length: ${text.length + 1}\r\n\r\n${text}\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, req));
  });
  server.on('tlsClientError', () => {});
  server.listen(opts.port, opts.host, () => {
    process.stdout.write(`{"port": ${server.address().port}}\n`);
  });
  if (opts.exitOnEof) {
    process.stdin.on('end', () => process.exit(0));
    process.stdin.resume();
  }
}

main();
