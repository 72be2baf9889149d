mod common;
use mpnet_testkit::*;
use std::io::Read;
struct Gen {
    left: u64,
    pr: PseudoRandom,
    head: Vec<u8>,
    tail: Vec<u8>,
    stage: u8,
}
impl Read for Gen {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.stage {
            0 => {
                let n = self.head.len().min(buf.len());
                buf[..n].copy_from_slice(&self.head[..n]);
                self.head.drain(..n);
                if self.head.is_empty() {
                    self.stage = 1
                }
                Ok(n)
            }
            1 => {
                let n = (self.left as usize).min(buf.len());
                self.pr.fill(&mut buf[..n]);
                self.left -= n as u64;
                if self.left == 0 {
                    self.stage = 2
                }
                Ok(n)
            }
            2 => {
                let n = self.tail.len().min(buf.len());
                buf[..n].copy_from_slice(&self.tail[..n]);
                self.tail.drain(..n);
                if self.tail.is_empty() {
                    self.stage = 3
                }
                Ok(n)
            }
            _ => Ok(0),
        }
    }
}
#[test]
fn big() {
    let ca = TestCa::new();
    let s = HttpsServer::start(&ca);
    let size: u64 = 1 << 30;
    let head = b"--BB\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n".to_vec();
    let tail = b"\r\n--BB--\r\n".to_vec();
    let total = head.len() as u64 + size + tail.len() as u64;
    let mut g = Gen {
        left: size,
        pr: PseudoRandom::new(1),
        head,
        tail,
        stage: 0,
    };
    let t = std::time::Instant::now();
    let mut r = common::agent(&ca)
        .post(&s.url("/upload"))
        .header("Content-Type", "multipart/form-data; boundary=BB")
        .header("Content-Length", total.to_string())
        .send(ureq::SendBody::from_reader(&mut g))
        .unwrap();
    let v = common::json(&mut r);
    eprintln!("upload {:?} {}", t.elapsed(), v["files"]);
    let t = std::time::Instant::now();
    let mut r = common::agent(&ca)
        .get(&s.url("/bytes/1073741824"))
        .call()
        .unwrap();
    let mut rd = r.body_mut().with_config().limit(u64::MAX).reader();
    let n = std::io::copy(&mut rd, &mut std::io::sink()).unwrap();
    eprintln!("download {n} {:?}", t.elapsed());
}
