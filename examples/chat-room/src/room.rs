//! The actor: one chat room per key. Who is talking is a property of the connection (its
//! parameters carry the name, its state keeps it), so `send` takes only the text.

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use rivetkit::{actor, ConnId, Ctx, UserError};
use serde::{Deserialize, Serialize};

/// How many messages a room keeps for `history`.
pub const HISTORY: usize = 50;
const MAX_NAME: usize = 32;
const MAX_TEXT: usize = 2000;

/// One chat message, as broadcast in the `message` event and returned by `history`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    /// The sender's name (from their connection).
    pub from: String,
    /// What they wrote.
    pub text: String,
    /// When the room received it, milliseconds since the Unix epoch.
    pub at: i64,
}

/// Payload of the `joined` and `left` events.
#[derive(Debug, Serialize)]
struct Presence<'a> {
    name: &'a str,
    at: i64,
}

/// What a client connects with: `{ "name": "alice" }`.
#[derive(Debug, Deserialize)]
pub struct JoinParams {
    #[serde(default)]
    name: Option<String>,
}

/// What the room remembers about each connection.
#[derive(Debug, Serialize, Deserialize)]
pub struct Member {
    name: String,
}

/// A room's persisted state: the last [`HISTORY`] messages. Members are not state: they are
/// the open connections (which survive the room's sleep on their own).
#[derive(Default, Serialize, Deserialize)]
pub struct ChatRoom {
    messages: VecDeque<Message>,
}

#[actor(rename_all = "camelCase")]
impl ChatRoom {
    // `Option`: a client that sends no parameters at all is refused like one without a name,
    // instead of failing to decode.
    type ConnParams = Option<JoinParams>;
    type ConnState = Member;

    /// Every caller says who it is, realtime connections and HTTP action calls alike (an
    /// HTTP action runs on a short-lived connection that passes through these hooks too).
    async fn on_before_connect(&mut self, params: &Option<JoinParams>) -> Result<(), UserError> {
        user_name(params).map(drop)
    }

    async fn create_conn_state(
        &mut self,
        params: &Option<JoinParams>,
    ) -> Result<Member, UserError> {
        Ok(Member {
            name: user_name(params)?,
        })
    }

    async fn on_connect(&mut self, ctx: &mut Ctx<Self>, conn: ConnId) {
        if let Some(name) = member_name(ctx, &conn) {
            ctx.broadcast(
                "joined",
                &Presence {
                    name: &name,
                    at: now_ms(),
                },
            );
        }
    }

    async fn on_disconnect(&mut self, ctx: &mut Ctx<Self>, conn: ConnId) {
        if let Some(name) = member_name(ctx, &conn) {
            ctx.broadcast(
                "left",
                &Presence {
                    name: &name,
                    at: now_ms(),
                },
            );
        }
    }

    /// Posts `text` as the calling connection's user; everyone subscribed to `message` gets
    /// it, and the room keeps it for `history`. Not called `send`: npm's client reserves
    /// `conn.send(…)` and `handle.send(…)` for queue messages.
    async fn send_message(
        &mut self,
        ctx: &mut Ctx<Self>,
        text: String,
    ) -> Result<Message, UserError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(UserError::with_code("empty_message", "say something"));
        }
        if text.chars().count() > MAX_TEXT {
            return Err(UserError::with_code(
                "message_too_long",
                format!("messages have at most {MAX_TEXT} characters"),
            ));
        }
        let from = ctx
            .conn()
            .map(|c| c.state().name.clone())
            .ok_or_else(|| UserError::with_code("no_connection", "sendMessage needs a caller"))?;
        let message = Message {
            from,
            text: text.to_string(),
            at: now_ms(),
        };
        self.messages.push_back(message.clone());
        while self.messages.len() > HISTORY {
            self.messages.pop_front();
        }
        ctx.broadcast("message", &message);
        Ok(message)
    }

    /// The last messages, oldest first.
    async fn history(&self) -> Vec<Message> {
        self.messages.iter().cloned().collect()
    }

    /// Names of the users connected now, each once, sorted. (Sorted rather than in joining
    /// order: connections restored after the room slept come back in storage order.)
    async fn members(&self, ctx: &mut Ctx<Self>) -> Vec<String> {
        let mut names: Vec<String> = ctx
            .conns()
            .filter(|c| c.is_realtime())
            .map(|c| c.state().name.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// The user's name from the connection parameters, or the error that refuses the connection.
fn user_name(params: &Option<JoinParams>) -> Result<String, UserError> {
    let name = params
        .as_ref()
        .and_then(|p| p.name.as_deref())
        .map(str::trim)
        .unwrap_or_default();
    if name.is_empty() {
        return Err(UserError::with_code(
            "name_required",
            "connect with a user name: params { name: \"alice\" }",
        ));
    }
    if name.chars().count() > MAX_NAME {
        return Err(UserError::with_code(
            "name_too_long",
            format!("names have at most {MAX_NAME} characters"),
        ));
    }
    Ok(name.to_string())
}

/// The name of a realtime connection; `None` for the short-lived connection of an HTTP
/// action, whose coming and going is not a join or a leave.
fn member_name(ctx: &Ctx<ChatRoom>, conn: &ConnId) -> Option<String> {
    ctx.conn_by_id(conn)
        .filter(|c| c.is_realtime())
        .map(|c| c.state().name.clone())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
