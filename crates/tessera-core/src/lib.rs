//! Tessera's domain. No IO, no async runtime, no clock reads outside [`clock`].
//!
//! * [`ids`], [`role`], [`model`]: the nouns.
//! * [`policy`]: who may do what (`authorize`), pure.
//! * [`claims`], [`verify`], [`keys`]: token format, the validation path, signing keys.
//! * [`status`]: the live status of a token value (rotated, deleted, expired).
//! * [`lifetime`], [`secret`], [`password`], [`clock`]: the rules around them.
//! * [`store`]: the storage traits the backends implement.

pub mod claims;
pub mod clock;
pub mod error;
pub mod ids;
pub mod keys;
pub mod lifetime;
pub mod model;
pub mod password;
pub mod policy;
pub mod role;
pub mod secret;
pub mod session;
pub mod status;
pub mod store;
pub mod throttle;
pub mod verify;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, Rejection};
