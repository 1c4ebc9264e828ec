//! A TCP proxy between oncall and a server that a test can cut, as a network partition does:
//! the server sees its client gone, while the client, behind the dead link, hears nothing
//! more (its connection is neither answered nor closed).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub struct Proxy {
    pub port: u16,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    cut: AtomicBool,
    /// The server side of every connection, to close when cut.
    servers: Mutex<Vec<TcpStream>>,
    /// The client side of every connection, kept open (and silent once cut) until the proxy goes.
    clients: Mutex<Vec<TcpStream>>,
}

impl Proxy {
    /// Forwards 127.0.0.1:PORT (returned) to 127.0.0.1:`target`.
    pub fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                accepting
                    .clients
                    .lock()
                    .unwrap()
                    .push(client.try_clone().unwrap());
                if accepting.cut.load(Ordering::SeqCst) {
                    continue; // accepted, and never answered
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                accepting
                    .servers
                    .lock()
                    .unwrap()
                    .push(server.try_clone().unwrap());
                pipe(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    &accepting,
                );
                pipe(server, client, &accepting);
            }
        });
        Proxy { port, shared }
    }

    /// Nothing passes any more: the server's side of every connection is closed, the client's
    /// left open and silent; new connections are accepted and never answered.
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        for server in self.shared.servers.lock().unwrap().drain(..) {
            let _ = server.shutdown(Shutdown::Both);
        }
    }

    /// New connections pass again (those cut stay silent).
    pub fn heal(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        for client in self.shared.clients.lock().unwrap().drain(..) {
            let _ = client.shutdown(Shutdown::Both);
        }
    }
}

/// Copies `from` to `to` until either ends or the proxy is cut; never closes the client side.
fn pipe(mut from: TcpStream, mut to: TcpStream, shared: &Arc<Shared>) {
    let shared = shared.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if shared.cut.load(Ordering::SeqCst) || to.write_all(&buf[..n]).is_err() {
                return;
            }
        }
    });
}
