//! What the tests against a real benchmark server share: the server and the client runtime.

use std::net::SocketAddr;
use std::time::Duration;

use storex_bench::server::{bind_tuned, ServerOptions, Tuning};

/// Starts the benchmark server with `tuning` on its own thread and actix system; its address.
pub fn start_server(tuning: Tuning) -> SocketAddr {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let options = ServerOptions {
                addr: ([127, 0, 0, 1], 0).into(),
                workers: 1,
            };
            let (server, addr) = bind_tuned(&options, &tuning).expect("bind a loopback port");
            sender.send(addr).expect("tell the test");
            let _ = server.await;
        });
    });
    receiver
        .recv_timeout(Duration::from_secs(30))
        .expect("the server starts")
}

/// The clients' runtime: two worker threads.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}
