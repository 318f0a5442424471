//! The middleware that takes each dialect exchange for the recorder: it reads the
//! request body (within `max_body_bytes`) and hands the same bytes on, keeps the
//! answer's bytes, and offers both to the writer's bounded queue. It never waits for
//! the writer: when the queue is full the exchange is dropped and counted. It neither
//! parses nor writes anything; the writer does.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::body::{BodySize, BodyStream, BoxBody, EitherBody, MessageBody};
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
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (http_req, http_res) = res.into_parts();
    let (head, answer) = http_res.into_parts();
    let answer = match collect(answer).await {
        Answer::Whole(bytes) => bytes,
        Answer::Passed(body) => {
            let res = head.set_body(body);
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

/// An answer's body: whole, or (too large, or failing) handed on as it comes.
enum Answer {
    Whole(Bytes),
    Passed(BoxBody),
}

/// Reads an answer's body up to [`MAX_ANSWER_BYTES`] (a streamed one included, as a
/// forwarded answer may be); beyond that, or on an error, the bytes read and the rest
/// are sent on unchanged and nothing is recorded.
async fn collect<B: MessageBody + 'static>(body: B) -> Answer {
    if let BodySize::Sized(n) = body.size()
        && n > MAX_ANSWER_BYTES
    {
        return Answer::Passed(BoxBody::new(body));
    }
    let mut body = Box::pin(body);
    let mut read = BytesMut::new();
    loop {
        match futures_util::future::poll_fn(|cx| body.as_mut().poll_next(cx)).await {
            None => return Answer::Whole(read.freeze()),
            Some(Ok(chunk)) => {
                read.extend_from_slice(&chunk);
                if read.len() as u64 > MAX_ANSWER_BYTES {
                    return Answer::Passed(rest(read.freeze(), body, None));
                }
            }
            Some(Err(e)) => return Answer::Passed(rest(read.freeze(), body, Some(e.into()))),
        }
    }
}

type BoxError = Box<dyn std::error::Error>;

/// The bytes already read, then the rest of the body (or the error it gave).
fn rest<B: MessageBody + 'static>(
    read: Bytes,
    mut body: std::pin::Pin<Box<B>>,
    error: Option<BoxError>,
) -> BoxBody {
    let head = futures_util::stream::iter([Ok::<Bytes, BoxError>(read)]);
    match error {
        Some(e) => BoxBody::new(BodyStream::new(
            head.chain(futures_util::stream::iter([Err(e)])),
        )),
        None => {
            let tail = futures_util::stream::poll_fn(move |cx| body.as_mut().poll_next(cx))
                .map(|r| r.map_err(Into::<BoxError>::into));
            BoxBody::new(BodyStream::new(head.chain(tail)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streamed(
        chunks: Vec<Result<Bytes, std::io::Error>>,
    ) -> BodyStream<impl futures_util::Stream<Item = Result<Bytes, std::io::Error>>> {
        BodyStream::new(futures_util::stream::iter(chunks))
    }

    #[tokio::test]
    async fn streamed_answers_are_read_whole_or_handed_on_unchanged() {
        let small = streamed(vec![Ok(Bytes::from("ab")), Ok(Bytes::from("c"))]);
        assert!(matches!(collect(small).await, Answer::Whole(b) if b == "abc"));
        let chunk = Bytes::from(vec![b'x'; 700 * 1024]);
        let big = streamed(vec![
            Ok(chunk.clone()),
            Ok(chunk.clone()),
            Ok(Bytes::from("end")),
        ]);
        let Answer::Passed(body) = collect(big).await else {
            panic!("a body over the limit is not recorded");
        };
        let all = actix_web::body::to_bytes(body).await.unwrap();
        assert_eq!(all.len(), 1400 * 1024 + 3);
        assert!(all.ends_with(b"xend"));
        let failing = streamed(vec![
            Ok(Bytes::from("ab")),
            Err(std::io::Error::other("gone")),
        ]);
        let Answer::Passed(body) = collect(failing).await else {
            panic!("a failing body is not recorded");
        };
        assert!(actix_web::body::to_bytes(body).await.is_err());
    }
}
