//! The benchmark's HTTP baseline: a bare hyper server on the same runtime
//! settings as latchkey (tokio's default multi-thread runtime, hyper-util's
//! auto HTTP/1 + HTTP/2 builder with a timer), answering every request with
//! a small fixed JSON body and nothing else.
//!
//! `cargo run --release --example bare_hyper -- 127.0.0.1:8081`

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// About the size of latchkey's answer to `GET /api/v1/auth/me`.
const BODY: &str = r#"{"id":"00000000-0000-4000-8000-000000000000","username":"bench","email":"bench@example.com","roles":["user"],"disabled":false}"#;

fn main() -> Result<(), String> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(serve(addr))
}

async fn serve(addr: String) -> Result<(), String> {
    let listener = TcpListener::bind(&addr).await.map_err(|e| e.to_string())?;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let builder = std::sync::Arc::new(builder);
    println!("listening on {addr}");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = service_fn(|_req: Request<hyper::body::Incoming>| async {
                let mut response = Response::new(Full::new(Bytes::from_static(BODY.as_bytes())));
                response.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("application/json"),
                );
                Ok::<_, Infallible>(response)
            });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
