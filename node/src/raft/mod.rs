//! Node-to-node traffic: [`network`] is openraft's network (outgoing RPCs over the
//! [`crate::seam::Connector`]), [`peer`] the peer listener's routes (incoming RPCs and forwarded
//! writes), [`rpc`] the bounded bincode framing both use. Nothing here touches the client API.

pub mod incarnation;
pub mod leader_contact;
pub mod network;
pub mod peer;
pub mod peer_versions;
pub mod prevote;
pub mod rpc;
