//! The middleware that takes each dialect exchange for the recorder: it reads the
//! request body (within `max_body_bytes`) and hands the same bytes on, keeps the
//! answer's bytes, and offers both to the writer's bounded queue. It never waits for
//! the writer: when the queue is full the exchange is dropped and counted. It neither
//! parses nor writes anything; the writer does.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::body::{BodySize, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{Error, HttpResponse};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use tokio::sync::mpsc;

use super::Stats;
use super::exchange::{Dialect, Exchange, may_continue, named, operation, worth_replaying};

/// Answers larger than this are not recorded (the dialects' are a few KiB).
const MAX_ANSWER_BYTES: u64 = 1024 * 1024;
/// A full queue is logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// What the middleware of every worker shares.
pub(super) struct Shared {
    pub tx: mpsc::Sender<Exchange>,
    pub stats: Arc<Stats>,
    pub names: Vec<String>,
    pub sample: f64,
    pub max_body: usize,
    pub extra_headers: Vec<String>,
}

impl Shared {
    fn sampled(&self) -> bool {
        self.sample >= 1.0 || (self.sample > 0.0 && rand::random::<f64>() < self.sample)
    }

    /// Hands an exchange to the writer, or drops and counts it.
    pub(super) fn offer(&self, x: Exchange) {
        match self.tx.try_send(x) {
            Ok(()) => {
                self.stats.captured.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                let total = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                self.warn(total);
            }
        }
    }

    fn warn(&self, total: u64) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.stats.last_warning.load(Ordering::Relaxed);
        if (last == 0 || now >= last + WARN_EVERY.as_secs())
            && self
                .stats
                .last_warning
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                dropped = total,
                queue = self.tx.max_capacity(),
                "recording: the queue is full; exchanges are dropped, not recorded (record.queue)"
            );
        }
    }
}

/// The recording middleware; `Capture::default()` records nothing.
#[derive(Clone, Default)]
pub struct Capture {
    pub(super) shared: Option<Arc<Shared>>,
}

impl<S, B> Transform<S, ServiceRequest> for Capture
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = CaptureService<S>;
    type InitError = ();
    type Future = std::future::Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        std::future::ready(Ok(CaptureService {
            service: Rc::new(service),
            shared: self.shared.clone(),
        }))
    }
}

pub struct CaptureService<S> {
    service: Rc<S>,
    shared: Option<Arc<Shared>>,
}

impl<S, B> Service<ServiceRequest> for CaptureService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let shared = self.shared.clone();
        Box::pin(async move {
            match shared {
                Some(shared) => capture(service, req, shared).await,
                None => Ok(service.call(req).await?.map_into_left_body()),
            }
        })
    }
}

async fn pass<S, B>(
    service: Rc<S>,
    req: ServiceRequest,
) -> Result<ServiceResponse<EitherBody<B>>, Error>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    Ok(service.call(req).await?.map_into_left_body())
}

async fn capture<S, B>(
    service: Rc<S>,
    mut req: ServiceRequest,
    shared: Arc<Shared>,
) -> Result<ServiceResponse<EitherBody<B>>, Error>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody + 'static,
{
    let Some(dialect) = Dialect::of_path(req.path()) else {
        return pass(service, req).await;
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n > shared.max_body) {
        return pass(service, req).await;
    }
    let mut payload = req.parts_mut().1.take();
    let mut body = BytesMut::new();
    let mut beyond = None;
    while let Some(chunk) = payload.next().await {
        match chunk {
            Ok(c) if body.len() + c.len() <= shared.max_body => body.extend_from_slice(&c),
            other => {
                beyond = Some(other);
                break;
            }
        }
    }
    let body = body.freeze();
    if let Some(next) = beyond {
        // Too large or unreadable: not recorded. The handler reads every byte (and the
        // error) as if nothing had been read.
        let rest = futures_util::stream::iter([Ok(body), next]).chain(payload);
        let rest: std::pin::Pin<
            Box<dyn futures_util::Stream<Item = Result<Bytes, actix_web::error::PayloadError>>>,
        > = Box::pin(rest);
        req.set_payload(Payload::from(rest));
        return pass(service, req).await;
    }
    req.set_payload(Payload::from(body.clone()));
    let selected = shared.sampled() && named(&operation(dialect, req.path(), &body), &shared.names);
    if !selected && !may_continue(&body) {
        return pass(service, req).await;
    }
    let at_ms = chrono::Utc::now().timestamp_millis();
    let method = req.method().to_string();
    let path = req.path().to_string();
    let query = req.query_string().to_string();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter(|(k, _)| worth_replaying(k.as_str(), &shared.extra_headers))
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_ascii_lowercase(),
                v.to_str().ok()?.to_string(),
            ))
        })
        .collect();

    let res = service.call(req).await?;
    match res.response().body().size() {
        BodySize::Sized(n) if n <= MAX_ANSWER_BYTES => {}
        BodySize::None => {}
        _ => return Ok(res.map_into_left_body()),
    }
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (http_req, http_res) = res.into_parts();
    let (head, answer) = http_res.into_parts();
    let answer = match actix_web::body::to_bytes(answer).await {
        Ok(b) => b,
        Err(_) => {
            // The answer's own body failed; nothing of it can be sent either.
            let res = HttpResponse::InternalServerError().finish();
            return Ok(ServiceResponse::new(http_req, res).map_into_right_body());
        }
    };
    shared.offer(Exchange {
        at_ms,
        dialect,
        method,
        path,
        query,
        headers,
        body,
        status,
        content_type,
        response: answer.clone(),
        selected,
    });
    let res: HttpResponse<BoxBody> = head.set_body(answer).map_into_boxed_body();
    Ok(ServiceResponse::new(http_req, res).map_into_right_body())
}
