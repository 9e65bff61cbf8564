//! Streamed response bodies: a result is encoded batch by batch on a blocking thread and handed to
//! hyper in chunks through a small bounded channel, so no response is ever held whole in memory and
//! a slow client slows the encoder down instead of piling up bytes.

use std::io::{self, Write};
use std::task::Poll;

use bytes::Bytes;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use http_body::Body as _;
use http_body_util::{BodyExt, BodyStream, StreamBody};
use hyper::body::Frame;
use tokio::sync::mpsc;

use super::{Body, BoxError};
use crate::encode::{self, EncodeOptions, Format};

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 64 << 10;
/// Chunks in flight between the encoder and the connection.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Encodes `stream` as `format` into a streamed body.
pub fn encoded(
    mut stream: SendableRecordBatchStream,
    format: Format,
    options: EncodeOptions,
) -> Body {
    let runtime = tokio::runtime::Handle::current();
    written(move |sink| {
        let mut encoder = encode::encoder(format, &options, stream.schema(), Box::new(sink))?;
        while let Some(batch) = runtime.block_on(stream.next()) {
            encoder.write_batch(&batch?)?;
        }
        encoder.finish()?;
        Ok(())
    })
}

/// A body written by `write` on a blocking thread into a sink that hands it to hyper in chunks.
/// Every streamed body is made here. An error (or a panic) after the head was sent ends the body
/// with an error, which aborts the connection: all HTTP/1.1 allows at that point. A client that
/// goes away makes the sink's writes fail, which stops `write`.
pub fn written(write: impl FnOnce(BodyWriter) -> Result<(), BoxError> + Send + 'static) -> Body {
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, BoxError>>(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let sink = BodyWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        // A panic must abort the body too: were the channel just dropped, the body would end as
        // if complete and the client would take a truncated result for the whole of it.
        let outcome =
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || write(sink))) {
                Ok(outcome) => outcome,
                Err(panic) => {
                    let what = crate::query::panic_text(panic.as_ref()).to_string();
                    tracing::error!(panic = %what, "a response body's writer panicked");
                    Err(format!("the response body failed: {what}").into())
                }
            };
        if let Err(e) = outcome {
            tracing::warn!(error = %e, "a response body ended with an error");
            let _ = tx.blocking_send(Err(e));
        }
    });
    let chunks = futures::stream::poll_fn(move |cx| match rx.poll_recv(cx) {
        Poll::Ready(Some(chunk)) => Poll::Ready(Some(chunk.map(Frame::data))),
        Poll::Ready(None) => Poll::Ready(None),
        Poll::Pending => Poll::Pending,
    });
    StreamBody::new(chunks).boxed_unsync()
}

/// Waits for a streamed body's first chunk (or its end) and puts it back in front, so that the
/// connection writes the response head and that chunk in one go instead of the head alone. A body
/// whose length is known (every fixed body) is ready already and is answered as it is.
pub async fn primed(mut body: Body) -> Body {
    if body.is_end_stream() || body.size_hint().exact().is_some() {
        return body;
    }
    match body.frame().await {
        None => super::full(Bytes::new()),
        Some(first) => StreamBody::new(futures::stream::iter([first]).chain(BodyStream::new(body)))
            .boxed_unsync(),
    }
}

/// A body between a fixed head and tail (a front's envelope around an encoded result), each of its
/// chunks passed through `map` (an escaping, or none).
pub fn enveloped(body: Body, head: &[u8], tail: &[u8], map: fn(Bytes) -> Bytes) -> Body {
    let frame = |bytes: &[u8]| Ok::<_, BoxError>(Frame::data(Bytes::copy_from_slice(bytes)));
    let head = futures::stream::iter([frame(head)]);
    let tail = futures::stream::iter([frame(tail)]);
    let middle = BodyStream::new(body).map(move |frame| frame.map(|f| f.map_data(map)));
    StreamBody::new(head.chain(middle).chain(tail)).boxed_unsync()
}

/// Waits for a result stream's first batch (or its end) before anything is sent: a query that fails
/// or times out before its first row is then answered with the front's own error, not a `200` whose
/// body breaks off. The batch is put back in front of the rest.
pub async fn first_batch(
    mut stream: SendableRecordBatchStream,
) -> Result<SendableRecordBatchStream, crate::query::EngineError> {
    let schema = stream.schema();
    let first = match stream.next().await {
        Some(batch) => Some(batch?),
        None => None,
    };
    let rest = futures::stream::iter(first.map(Ok)).chain(stream);
    Ok(Box::pin(RecordBatchStreamAdapter::new(schema, rest)))
}

/// Counts the data bytes of a body as they are sent.
pub fn metered(body: Body, on_bytes: impl Fn(u64) + Send + Sync + 'static) -> Body {
    tapped(body, move |data| on_bytes(data.len() as u64))
}

/// Hands each data chunk of a body to `on_chunk` as it is sent (the control plane's journal). The
/// body keeps its length: a fixed body still goes out with a `Content-Length`, not chunked.
pub fn tapped(body: Body, on_chunk: impl Fn(&[u8]) + Send + Sync + 'static) -> Body {
    Tapped {
        body,
        on_chunk: Box::new(on_chunk),
    }
    .boxed_unsync()
}

/// A body whose data chunks are shown to a callback as they pass (`BodyExt::map_frame` would
/// forget the body's length, and with it the `Content-Length`).
struct Tapped<F> {
    body: Body,
    /// Boxed, so that the body is `Unpin` whatever the callback.
    on_chunk: Box<F>,
}

impl<F: Fn(&[u8])> http_body::Body for Tapped<F> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            (self.on_chunk)(data);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Sends at most `limit` bytes of a body, then ends it with an error, so the connection is closed
/// mid-body whatever its length (a fault rule's `cut`).
pub fn cut_after(body: Body, limit: usize) -> Body {
    enum Step {
        Sending(usize),
        Cutting,
        Done,
    }
    let frames = http_body_util::BodyStream::new(body);
    let stream = futures::stream::unfold(
        (frames, Step::Sending(0)),
        move |(mut frames, step)| async move {
            let sent = match step {
                Step::Done => return None,
                Step::Cutting => {
                    let cut: BoxError = "the connection was cut by a polyquery fault rule".into();
                    return Some((Err(cut), (frames, Step::Done)));
                }
                Step::Sending(sent) => sent,
            };
            match frames.next().await {
                None => Some((Ok(Frame::data(Bytes::new())), (frames, Step::Cutting))),
                Some(Err(e)) => Some((Err(e), (frames, Step::Done))),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if sent + data.len() < limit => {
                        let sent = sent + data.len();
                        Some((Ok(Frame::data(data)), (frames, Step::Sending(sent))))
                    }
                    Ok(data) => {
                        let part = data.slice(..limit.saturating_sub(sent).min(data.len()));
                        Some((Ok(Frame::data(part)), (frames, Step::Cutting)))
                    }
                    // Trailers: none are sent once the body is to be cut.
                    Err(_) => Some((Ok(Frame::data(Bytes::new())), (frames, Step::Cutting))),
                },
            }
        },
    );
    StreamBody::new(stream).boxed_unsync()
}

/// The sink of a [`written`] body: sends what it is given down a channel in chunks, blocking while
/// the channel is full (it lives on the blocking thread `written` runs its writer on).
pub struct BodyWriter {
    tx: mpsc::Sender<Result<Bytes, BoxError>>,
    buf: Vec<u8>,
}

impl BodyWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for BodyWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for BodyWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_primed_body_has_its_first_chunk_ready_with_the_head() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let body = written(move |mut out| {
            // The writer is slower than the handler: its first chunk comes after a signal.
            let _ = rx.blocking_recv();
            out.write_all(b"a,b\n1,2\n")?;
            out.flush()?;
            out.write_all(b"3,4\n")?;
            Ok(())
        });
        let primed = tokio::spawn(primed(body));
        tx.send(()).unwrap();
        let mut body = primed.await.unwrap();
        // Ready at once: hyper writes it in the same write as the head.
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        let first = std::pin::Pin::new(&mut body).poll_frame(&mut cx);
        let Poll::Ready(Some(Ok(frame))) = first else {
            panic!("the first chunk was not ready: {first:?}");
        };
        assert_eq!(
            frame.into_data().unwrap(),
            Bytes::from_static(b"a,b\n1,2\n")
        );
        let rest = body.collect().await.unwrap().to_bytes();
        assert_eq!(rest, Bytes::from_static(b"3,4\n"));
    }

    #[tokio::test]
    async fn a_metered_fixed_body_keeps_its_length() {
        let counted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = counted.clone();
        let body = metered(super::super::full("0123456789"), move |n| {
            seen.fetch_add(n as usize, std::sync::atomic::Ordering::Relaxed);
        });
        // hyper sends a Content-Length (not chunks) only for a body that knows its length.
        assert_eq!(body.size_hint().exact(), Some(10));
        assert_eq!(body.collect().await.unwrap().to_bytes(), "0123456789");
        assert_eq!(counted.load(std::sync::atomic::Ordering::Relaxed), 10);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_panic_while_encoding_aborts_the_body() {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(vec![1, 2, 3]))],
        )
        .unwrap();
        let mut sent = false;
        let batches = futures::stream::poll_fn(move |_| {
            if sent {
                panic!("boom in the middle of a result");
            }
            sent = true;
            Poll::Ready(Some(Ok(batch.clone())))
        });
        let stream = Box::pin(RecordBatchStreamAdapter::new(schema, batches));
        let body = encoded(stream, Format::Csv, EncodeOptions::default());
        let collected = body.collect().await;
        assert!(
            collected.is_err(),
            "the body ended as if complete: {:?}",
            collected.map(|c| c.to_bytes())
        );
    }
}
