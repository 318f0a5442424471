//! What the tests share: the real gateway on a fresh database per test (a temporary
//! SQLite file, or a new PostgreSQL database when OTPGATE_TEST_POSTGRES_URL is set),
//! the requests most tests send, the real binary, and fake providers on loopback.

mod app;
mod backend;
mod binary;
pub mod environment;
pub mod legacy;
mod outbox;
pub mod sms;
pub mod smtp;
mod summit;
mod text;
mod wait;

pub use app::*;
pub use backend::*;
pub use binary::*;
pub use outbox::*;
pub use summit::*;
pub use text::*;
pub use wait::*;
