//! [`Codec`] implementations: the BARE layouts of versions 1–4 and the json/cbor object shapes
//! (key order as npm's zod schemas emit them; unknown keys ignored as zod strips them).

use crate::bare::{Reader, Writer};
use crate::codec::sealed::Codec;
use crate::codec::{decode_payload, encode_payload, Encoding, Message};
use crate::error::Error;
use crate::messages::*;
use crate::value::Value;

// ---------------------------------------------------------------------------------------------
// Object building and reading helpers.

struct Obj(Vec<(Value, Value)>);

impl Obj {
    fn new() -> Self {
        Obj(Vec::with_capacity(6))
    }

    fn put(mut self, key: &str, value: Value) -> Self {
        self.0.push((Value::Text(key.to_owned()), value));
        self
    }

    fn put_opt(self, key: &str, value: Option<Value>) -> Self {
        match value {
            Some(v) => self.put(key, v),
            None => self,
        }
    }

    fn done(self) -> Value {
        Value::Map(self.0)
    }
}

/// The fields of a decoded object, taken out by name.
struct Fields {
    entries: Vec<(Value, Value)>,
    path: &'static str,
}

impl Fields {
    fn of(value: Value, path: &'static str) -> Result<Self, Error> {
        match value {
            Value::Map(entries) => Ok(Fields { entries, path }),
            _ => Err(Error::schema(path, "is not an object")),
        }
    }

    fn name(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Removes a field; with repeated keys the last one wins, as in a JavaScript object.
    fn take(&mut self, key: &str) -> Option<Value> {
        let i = self
            .entries
            .iter()
            .rposition(|(k, _)| k.as_str() == Some(key))?;
        Some(self.entries.swap_remove(i).1)
    }

    fn string(&mut self, key: &str) -> Result<String, Error> {
        match self.take(key) {
            Some(Value::Text(s)) => Ok(s),
            Some(_) => Err(Error::schema(self.name(key), "is not a string")),
            None => Err(Error::schema(self.name(key), "is missing")),
        }
    }

    fn opt_string(&mut self, key: &str) -> Result<Option<String>, Error> {
        match self.take(key) {
            Some(Value::Text(s)) => Ok(Some(s)),
            None | Some(Value::Null) | Some(Value::Undefined) => Ok(None),
            Some(_) => Err(Error::schema(self.name(key), "is not a string")),
        }
    }

    fn bool(&mut self, key: &str) -> Result<bool, Error> {
        match self.take(key) {
            Some(Value::Bool(b)) => Ok(b),
            Some(_) => Err(Error::schema(self.name(key), "is not a boolean")),
            None => Err(Error::schema(self.name(key), "is missing")),
        }
    }

    fn opt_bool(&mut self, key: &str) -> Result<Option<bool>, Error> {
        match self.take(key) {
            Some(Value::Bool(b)) => Ok(Some(b)),
            None | Some(Value::Null) | Some(Value::Undefined) => Ok(None),
            Some(_) => Err(Error::schema(self.name(key), "is not a boolean")),
        }
    }

    fn uint(&mut self, key: &str) -> Result<u64, Error> {
        match self.take(key) {
            Some(v) => to_u64(&v)
                .ok_or_else(|| Error::schema(self.name(key), "is not an unsigned integer")),
            None => Err(Error::schema(self.name(key), "is missing")),
        }
    }

    fn opt_uint(&mut self, key: &str) -> Result<Option<u64>, Error> {
        match self.take(key) {
            None | Some(Value::Null) | Some(Value::Undefined) => Ok(None),
            Some(v) => to_u64(&v)
                .map(Some)
                .ok_or_else(|| Error::schema(self.name(key), "is not an unsigned integer")),
        }
    }

    /// A payload field that must be present.
    fn payload(&mut self, key: &str) -> Result<Value, Error> {
        self.take(key)
            .ok_or_else(|| Error::schema(self.name(key), "is missing"))
    }

    /// A payload field whose absence means `undefined`.
    fn payload_or_undefined(&mut self, key: &str) -> Value {
        self.take(key).unwrap_or(Value::Undefined)
    }

    fn actor(&mut self, key: &str) -> Result<Option<ActorSpecifier>, Error> {
        match self.take(key) {
            None | Some(Value::Null) | Some(Value::Undefined) => Ok(None),
            Some(v) => {
                let mut f = Fields::of(v, "actor")?;
                Ok(Some(ActorSpecifier {
                    actor_id: f.string("actorId")?,
                    generation: f.uint("generation")?,
                    key: f.opt_string("key")?,
                }))
            }
        }
    }
}

/// An id or count: an integer (any CBOR width, a bigint, or an integral JSON number) in
/// [0, 2^64).
fn to_u64(v: &Value) -> Option<u64> {
    v.as_integer().and_then(|i| u64::try_from(i).ok())
}

/// A bigint-typed id (written `["$BigInt","n"]` in json and as an 8-byte integer in cbor).
fn id_value(id: u64) -> Value {
    Value::BigInt(i128::from(id))
}

/// A JavaScript-number-typed integer.
fn number_value(n: u64) -> Value {
    match i64::try_from(n) {
        Ok(i) => Value::Int(i),
        Err(_) => Value::BigInt(i128::from(n)),
    }
}

fn actor_object(actor: &ActorSpecifier, generation_as_bigint: bool) -> Value {
    Obj::new()
        .put("actorId", Value::Text(actor.actor_id.clone()))
        .put(
            "generation",
            if generation_as_bigint {
                id_value(actor.generation)
            } else {
                number_value(actor.generation)
            },
        )
        .put_opt("key", actor.key.clone().map(Value::Text))
        .done()
}

fn tagged_body(tag: &str, val: Value) -> Value {
    Obj::new()
        .put(
            "body",
            Obj::new()
                .put("tag", Value::Text(tag.to_owned()))
                .put("val", val)
                .done(),
        )
        .done()
}

/// Splits `{body:{tag, val}}` into the tag and the value object.
fn untag_body(value: Value) -> Result<(String, Value), Error> {
    let mut outer = Fields::of(value, "")?;
    let body = outer
        .take("body")
        .ok_or_else(|| Error::schema("body", "is missing"))?;
    let mut body = Fields::of(body, "body")?;
    let tag = body.string("tag")?;
    let val = body
        .take("val")
        .ok_or_else(|| Error::schema("body.val", "is missing"))?;
    Ok((tag, val))
}

fn read_payload(r: &mut Reader<'_>) -> Result<Value, Error> {
    decode_payload(r.data()?)
}

fn read_opt_payload(r: &mut Reader<'_>) -> Result<Option<Value>, Error> {
    r.optional(read_payload)
}

fn write_payload(w: &mut Writer, v: &Value) {
    w.data(&encode_payload(v));
}

fn write_opt_payload(w: &mut Writer, v: Option<&Value>) {
    w.optional(v, write_payload);
}

fn read_actor(r: &mut Reader<'_>) -> Result<ActorSpecifier, Error> {
    Ok(ActorSpecifier {
        actor_id: r.string()?,
        generation: r.uint()?,
        key: r.optional(|r| r.string())?,
    })
}

fn write_actor(w: &mut Writer, a: &ActorSpecifier) {
    w.string(&a.actor_id);
    w.uint(a.generation);
    w.optional(a.key.as_ref(), |w, k| w.string(k));
}

// ---------------------------------------------------------------------------------------------
// ToServer

impl Codec for ToServer {
    const NAME: &'static str = "ToServer";
    const MIN_VERSION: u16 = 1;

    fn to_object(&self, _encoding: Encoding) -> Value {
        match self {
            ToServer::ActionRequest(a) => tagged_body(
                "ActionRequest",
                Obj::new()
                    .put("id", id_value(a.id))
                    .put("name", Value::Text(a.name.clone()))
                    .put("args", a.args.clone())
                    .done(),
            ),
            ToServer::SubscriptionRequest(s) => tagged_body(
                "SubscriptionRequest",
                Obj::new()
                    .put("eventName", Value::Text(s.event_name.clone()))
                    .put("subscribe", Value::Bool(s.subscribe))
                    .done(),
            ),
        }
    }

    fn from_object(value: Value) -> Result<Self, Error> {
        let (tag, val) = untag_body(value)?;
        let mut f = Fields::of(val, "body.val")?;
        match tag.as_str() {
            "ActionRequest" => Ok(ToServer::ActionRequest(ActionRequest {
                id: f.uint("id")?,
                name: f.string("name")?,
                args: f.payload("args")?,
            })),
            "SubscriptionRequest" => Ok(ToServer::SubscriptionRequest(SubscriptionRequest {
                event_name: f.string("eventName")?,
                subscribe: f.bool("subscribe")?,
            })),
            _ => Err(Error::schema("body.tag", "is not a ToServer variant")),
        }
    }

    fn write_bare(&self, w: &mut Writer) {
        match self {
            ToServer::ActionRequest(a) => {
                w.u8(0);
                w.uint(a.id);
                w.string(&a.name);
                write_payload(w, &a.args);
            }
            ToServer::SubscriptionRequest(s) => {
                w.u8(1);
                w.string(&s.event_name);
                w.bool(s.subscribe);
            }
        }
    }

    fn read_bare(r: &mut Reader<'_>, _version: u16) -> Result<Self, Error> {
        match r.u8()? {
            0 => Ok(ToServer::ActionRequest(ActionRequest {
                id: r.uint()?,
                name: r.string()?,
                args: read_payload(r)?,
            })),
            1 => Ok(ToServer::SubscriptionRequest(SubscriptionRequest {
                event_name: r.string()?,
                subscribe: r.bool()?,
            })),
            tag => Err(Error::InvalidTag {
                tag,
                union: "ToServerBody",
            }),
        }
    }
}

impl Message for ToServer {}

// ---------------------------------------------------------------------------------------------
// ToClient

impl Codec for ToClient {
    const NAME: &'static str = "ToClient";
    const MIN_VERSION: u16 = 1;

    fn to_object(&self, encoding: Encoding) -> Value {
        match self {
            ToClient::Init(i) => tagged_body(
                "Init",
                Obj::new()
                    .put("actorId", Value::Text(i.actor_id.clone()))
                    .put("connectionId", Value::Text(i.connection_id.clone()))
                    .done(),
            ),
            ToClient::Error(e) => tagged_body(
                "Error",
                Obj::new()
                    .put("group", Value::Text(e.group.clone()))
                    .put("code", Value::Text(e.code.clone()))
                    .put("message", Value::Text(e.message.clone()))
                    .put_opt("metadata", e.metadata.clone())
                    // The npm client requires the key (null for connection-level errors).
                    .put("actionId", e.action_id.map_or(Value::Null, id_value))
                    .put_opt(
                        "actor",
                        e.actor
                            .as_ref()
                            .map(|a| actor_object(a, encoding == Encoding::Cbor)),
                    )
                    .done(),
            ),
            ToClient::ActionResponse(a) => tagged_body(
                "ActionResponse",
                Obj::new()
                    .put("id", id_value(a.id))
                    .put("output", a.output.clone())
                    .done(),
            ),
            ToClient::Event(e) => tagged_body(
                "Event",
                Obj::new()
                    .put("name", Value::Text(e.name.clone()))
                    .put("args", e.args.clone())
                    .done(),
            ),
        }
    }

    fn from_object(value: Value) -> Result<Self, Error> {
        let (tag, val) = untag_body(value)?;
        let mut f = Fields::of(val, "body.val")?;
        match tag.as_str() {
            "Init" => Ok(ToClient::Init(Init {
                actor_id: f.string("actorId")?,
                connection_id: f.string("connectionId")?,
            })),
            "Error" => Ok(ToClient::Error(ErrorMessage {
                group: f.string("group")?,
                code: f.string("code")?,
                message: f.string("message")?,
                metadata: f.take("metadata"),
                action_id: f.opt_uint("actionId")?,
                actor: f.actor("actor")?,
            })),
            "ActionResponse" => Ok(ToClient::ActionResponse(ActionResponse {
                id: f.uint("id")?,
                output: f.payload("output")?,
            })),
            "Event" => Ok(ToClient::Event(Event {
                name: f.string("name")?,
                args: f.payload("args")?,
            })),
            _ => Err(Error::schema("body.tag", "is not a ToClient variant")),
        }
    }

    fn write_bare(&self, w: &mut Writer) {
        match self {
            ToClient::Init(i) => {
                w.u8(0);
                w.string(&i.actor_id);
                w.string(&i.connection_id);
            }
            ToClient::Error(e) => {
                w.u8(1);
                w.string(&e.group);
                w.string(&e.code);
                w.string(&e.message);
                write_opt_payload(w, e.metadata.as_ref());
                w.optional(e.action_id.as_ref(), |w, id| w.uint(*id));
                w.optional(e.actor.as_ref(), write_actor);
            }
            ToClient::ActionResponse(a) => {
                w.u8(2);
                w.uint(a.id);
                write_payload(w, &a.output);
            }
            ToClient::Event(e) => {
                w.u8(3);
                w.string(&e.name);
                write_payload(w, &e.args);
            }
        }
    }

    fn read_bare(r: &mut Reader<'_>, version: u16) -> Result<Self, Error> {
        match r.u8()? {
            0 => {
                let init = Init {
                    actor_id: r.string()?,
                    connection_id: r.string()?,
                };
                if version == 1 {
                    // v1 carried a connection token; v2 dropped it.
                    r.string()?;
                }
                Ok(ToClient::Init(init))
            }
            1 => Ok(ToClient::Error(ErrorMessage {
                group: r.string()?,
                code: r.string()?,
                message: r.string()?,
                metadata: read_opt_payload(r)?,
                action_id: r.optional(|r| r.uint())?,
                // `actor` exists from v4 on.
                actor: if version >= 4 {
                    r.optional(read_actor)?
                } else {
                    None
                },
            })),
            2 => Ok(ToClient::ActionResponse(ActionResponse {
                id: r.uint()?,
                output: read_payload(r)?,
            })),
            3 => Ok(ToClient::Event(Event {
                name: r.string()?,
                args: read_payload(r)?,
            })),
            tag => Err(Error::InvalidTag {
                tag,
                union: "ToClientBody",
            }),
        }
    }
}

impl Message for ToClient {}

// ---------------------------------------------------------------------------------------------
// HTTP bodies

impl Codec for HttpActionRequest {
    const NAME: &'static str = "HttpActionRequest";
    const MIN_VERSION: u16 = 1;

    fn to_object(&self, _encoding: Encoding) -> Value {
        Obj::new().put("args", self.args.clone()).done()
    }

    fn from_object(value: Value) -> Result<Self, Error> {
        let mut f = Fields::of(value, "")?;
        Ok(HttpActionRequest {
            args: f.payload_or_undefined("args"),
        })
    }

    fn write_bare(&self, w: &mut Writer) {
        write_payload(w, &self.args);
    }

    fn read_bare(r: &mut Reader<'_>, _version: u16) -> Result<Self, Error> {
        Ok(HttpActionRequest {
            args: read_payload(r)?,
        })
    }
}

impl Message for HttpActionRequest {}

impl Codec for HttpActionResponse {
    const NAME: &'static str = "HttpActionResponse";
    const MIN_VERSION: u16 = 1;

    fn to_object(&self, _encoding: Encoding) -> Value {
        Obj::new().put("output", self.output.clone()).done()
    }

    fn from_object(value: Value) -> Result<Self, Error> {
        let mut f = Fields::of(value, "")?;
        Ok(HttpActionResponse {
            output: f.payload("output")?,
        })
    }

    fn write_bare(&self, w: &mut Writer) {
        write_payload(w, &self.output);
    }

    fn read_bare(r: &mut Reader<'_>, _version: u16) -> Result<Self, Error> {
        Ok(HttpActionResponse {
            output: read_payload(r)?,
        })
    }
}

impl Message for HttpActionResponse {}

impl Codec for HttpQueueSendRequest {
    const NAME: &'static str = "HttpQueueSendRequest";
    const MIN_VERSION: u16 = 3;

    fn to_object(&self, _encoding: Encoding) -> Value {
        Obj::new()
            .put("body", self.body.clone())
            .put_opt("name", self.name.clone().map(Value::Text))
            .put_opt("wait", self.wait.map(Value::Bool))
            .put_opt("timeout", self.timeout.map(number_value))
            .done()
    }

    fn from_object(value: Value) -> Result<Self, Error> {
        let mut f = Fields::of(value, "")?;
        Ok(HttpQueueSendRequest {
            body: f.payload_or_undefined("body"),
            name: f.opt_string("name")?,
            wait: f.opt_bool("wait")?,
            timeout: f.opt_uint("timeout")?,
        })
    }

    fn write_bare(&self, w: &mut Writer) {
        write_payload(w, &self.body);
        w.optional(self.name.as_ref(), |w, n| w.string(n));
        w.optional(self.wait.as_ref(), |w, b| w.bool(*b));
        w.optional(self.timeout.as_ref(), |w, t| w.u64(*t));
    }

    fn read_bare(r: &mut Reader<'_>, _version: u16) -> Result<Self, Error> {
        Ok(HttpQueueSendRequest {
            body: read_payload(r)?,
            name: r.optional(|r| r.string())?,
            wait: r.optional(|r| r.bool())?,
            timeout: r.optional(|r| r.u64())?,
        })
    }
}

impl Message for HttpQueueSendRequest {}

impl Codec for HttpQueueSendResponse {
    const NAME: &'static str = "HttpQueueSendResponse";
    const MIN_VERSION: u16 = 3;

    fn to_object(&self, _encoding: Encoding) -> Value {
        Obj::new()
            .put("status", Value::Text(self.status.clone()))
            .put_opt("response", self.response.clone())
            .done()
    }

    fn from_object(value: Value) -> Result<Self, Error> {
        let mut f = Fields::of(value, "")?;
        let status = f.string("status")?;
        if status != QUEUE_STATUS_COMPLETED && status != QUEUE_STATUS_TIMED_OUT {
            return Err(Error::schema(
                "status",
                "is not \"completed\" or \"timedOut\"",
            ));
        }
        Ok(HttpQueueSendResponse {
            status,
            response: f.take("response"),
        })
    }

    fn write_bare(&self, w: &mut Writer) {
        w.string(&self.status);
        write_opt_payload(w, self.response.as_ref());
    }

    fn read_bare(r: &mut Reader<'_>, _version: u16) -> Result<Self, Error> {
        Ok(HttpQueueSendResponse {
            status: r.string()?,
            response: read_opt_payload(r)?,
        })
    }
}

impl Message for HttpQueueSendResponse {}

impl Codec for HttpResponseError {
    const NAME: &'static str = "HttpResponseError";
    const MIN_VERSION: u16 = 1;

    fn to_object(&self, _encoding: Encoding) -> Value {
        Obj::new()
            .put("group", Value::Text(self.group.clone()))
            .put("code", Value::Text(self.code.clone()))
            .put("message", Value::Text(self.message.clone()))
            .put_opt("metadata", self.metadata.clone())
            .put_opt("actor", self.actor.as_ref().map(|a| actor_object(a, false)))
            .done()
    }

    fn from_object(value: Value) -> Result<Self, Error> {
        let mut f = Fields::of(value, "")?;
        Ok(HttpResponseError {
            group: f.string("group")?,
            code: f.string("code")?,
            message: f.string("message")?,
            metadata: f.take("metadata"),
            actor: f.actor("actor")?,
        })
    }

    fn write_bare(&self, w: &mut Writer) {
        w.string(&self.group);
        w.string(&self.code);
        w.string(&self.message);
        write_opt_payload(w, self.metadata.as_ref());
        w.optional(self.actor.as_ref(), write_actor);
    }

    fn read_bare(r: &mut Reader<'_>, version: u16) -> Result<Self, Error> {
        Ok(HttpResponseError {
            group: r.string()?,
            code: r.string()?,
            message: r.string()?,
            metadata: read_opt_payload(r)?,
            actor: if version >= 4 {
                r.optional(read_actor)?
            } else {
                None
            },
        })
    }
}

impl Message for HttpResponseError {}

impl Codec for HttpResolveResponse {
    const NAME: &'static str = "HttpResolveResponse";
    const MIN_VERSION: u16 = 1;

    fn to_object(&self, _encoding: Encoding) -> Value {
        Obj::new()
            .put("actorId", Value::Text(self.actor_id.clone()))
            .done()
    }

    fn from_object(value: Value) -> Result<Self, Error> {
        let mut f = Fields::of(value, "")?;
        Ok(HttpResolveResponse {
            actor_id: f.string("actorId")?,
        })
    }

    fn write_bare(&self, w: &mut Writer) {
        w.string(&self.actor_id);
    }

    fn read_bare(r: &mut Reader<'_>, _version: u16) -> Result<Self, Error> {
        Ok(HttpResolveResponse {
            actor_id: r.string()?,
        })
    }
}

impl Message for HttpResolveResponse {}
