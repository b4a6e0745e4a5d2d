//! A native [`Host`] for tests: the memory store (with its atomic `increment`), a map of
//! variables, outbound calls recorded and answered from a script, a settable clock, a
//! seeded random source and the log kept in memory.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use super::{handle, BodyError, Host, Request, Response};
use crate::model::{Headers, OutboundRequest};
use crate::state::{Kv, MemKv, StoreError};

/// What the platform answers a call: `(status, body)`, or why it could not be reached.
pub type Answer = Result<(u16, Vec<u8>), String>;

pub struct FakeHost {
    pub kv: MemKv,
    pub vars: RefCell<HashMap<String, String>>,
    /// Every outbound call, in order.
    pub sent: RefCell<Vec<OutboundRequest>>,
    /// How many of `sent` were made before the last answer was given.
    pub sent_before_answer: Cell<usize>,
    /// Answers for the next calls; `202` with an empty body once it runs out.
    pub answers: RefCell<VecDeque<Answer>>,
    pub now_ms: Cell<u64>,
    /// Every log line.
    pub logs: RefCell<Vec<String>>,
    /// How far the clock moves on every store call (a slow store).
    pub store_delay_ms: Cell<u64>,
    /// Store calls made, by kind: `get`, `set`, `keys`…
    pub store_calls: RefCell<HashMap<&'static str, usize>>,
    seed: Cell<u64>,
}

/// 2026-11-25T09:30:00Z.
pub const START_MS: u64 = 1_795_599_000_000;

pub const ADMIN_TOKEN: &str = "admin-token-for-tests-0123456789";
pub const PLATFORM_TOKEN: &str = "platform-token-for-tests-012345";

impl Default for FakeHost {
    /// A host with `admin_token`, `platform_url` (`https://platform.example.com`) and
    /// `platform_token` set.
    fn default() -> Self {
        let host = FakeHost {
            kv: MemKv::default(),
            vars: RefCell::default(),
            sent: RefCell::default(),
            sent_before_answer: Cell::new(0),
            answers: RefCell::default(),
            now_ms: Cell::new(START_MS),
            logs: RefCell::default(),
            store_delay_ms: Cell::new(0),
            store_calls: RefCell::default(),
            seed: Cell::new(0x9e37_79b9_7f4a_7c15),
        };
        host.set_var("admin_token", ADMIN_TOKEN);
        host.set_var("platform_url", "https://platform.example.com");
        host.set_var("platform_token", PLATFORM_TOKEN);
        host
    }
}

impl FakeHost {
    pub fn set_var(&self, name: &str, value: &str) {
        self.vars.borrow_mut().insert(name.into(), value.into());
    }

    pub fn unset_var(&self, name: &str) {
        self.vars.borrow_mut().remove(name);
    }

    /// The platform's next answer.
    pub fn answer(&self, answer: Answer) {
        self.answers.borrow_mut().push_back(answer);
    }

    pub fn advance(&self, ms: u64) {
        self.now_ms.set(self.now_ms.get() + ms);
    }

    /// Makes every store operation fail (or work again).
    pub fn break_store(&self, broken: bool) {
        self.kv
            .fail
            .store(broken, std::sync::atomic::Ordering::SeqCst);
    }

    /// Store calls of `kind` made since the last [`reset_store_calls`](Self::reset_store_calls).
    pub fn store_calls(&self, kind: &str) -> usize {
        self.store_calls.borrow().get(kind).copied().unwrap_or(0)
    }

    pub fn reset_store_calls(&self) {
        self.store_calls.borrow_mut().clear();
    }

    /// Counts a store call and lets the clock move by the store's delay.
    fn store_call(&self, kind: &'static str) {
        *self.store_calls.borrow_mut().entry(kind).or_default() += 1;
        self.advance(self.store_delay_ms.get());
    }

    /// The JSON body of outbound call `i`.
    pub fn sent_json(&self, i: usize) -> serde_json::Value {
        serde_json::from_slice(&self.sent.borrow()[i].body).expect("a JSON deploy body")
    }

    pub fn calls(&self) -> usize {
        self.sent.borrow().len()
    }

    /// Sends `method path` with `headers` and `body` through the gateway.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answered {
        let request = Request {
            method: method.into(),
            path: path.into(),
            headers: Headers::new(
                headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .chain([("host".to_string(), "hooks.example.com".to_string())]),
            ),
            scheme: Some("https".into()),
            authority: None,
        };
        let mut read_body = |limit: usize| {
            if body.len() > limit {
                Err(BodyError::TooLarge)
            } else {
                Ok(body.to_vec())
            }
        };
        let mut response = handle(self, &request, &mut read_body);
        // As Spin does: the calls beyond the deploy call are made once the answer is out.
        self.sent_before_answer.set(self.calls());
        if let Some(after) = response.after.take() {
            super::followup::run(self, after);
        }
        Answered(response)
    }

    /// An admin call with the right token.
    pub fn admin(&self, method: &str, path: &str, body: &serde_json::Value) -> Answered {
        let bearer = format!("Bearer {ADMIN_TOKEN}");
        let headers = [
            ("authorization", bearer.as_str()),
            ("content-type", "application/json"),
        ];
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        self.request(method, path, &headers, &body)
    }

    /// Everything the gateway ever showed: answers are checked by the tests, the log here.
    pub fn log_text(&self) -> String {
        self.logs.borrow().join("\n")
    }
}

/// A response, with its JSON body at hand.
#[derive(Debug)]
pub struct Answered(pub Response);

impl Answered {
    pub fn status(&self) -> u16 {
        self.0.status
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.0.body).unwrap_or(serde_json::Value::Null)
    }

    /// `(status, result)` of a hook's answer.
    pub fn result(&self) -> (u16, String) {
        let result = self.json()["result"].as_str().unwrap_or("-").to_string();
        (self.status(), result)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.0
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.body).into_owned()
    }
}

/// The store as the gateway sees it: the memory store, with every call counted and
/// delayed.
impl Kv for FakeHost {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.store_call("get");
        self.kv.get(key)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.store_call("set");
        self.kv.set(key, value)
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.store_call("delete");
        self.kv.delete(key)
    }
    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.store_call("exists");
        self.kv.exists(key)
    }
    fn keys(&self) -> Result<Vec<String>, StoreError> {
        self.store_call("keys");
        self.kv.keys()
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.store_call("increment");
        self.kv.increment(key, delta)
    }
    fn swap(&self, key: &str, expected: Option<&[u8]>, value: &[u8]) -> Result<bool, StoreError> {
        self.store_call("swap");
        self.kv.swap(key, expected, value)
    }
}

impl Host for FakeHost {
    fn kv(&self) -> Result<&dyn Kv, StoreError> {
        Ok(self)
    }

    fn var(&self, name: &str) -> Option<String> {
        self.vars.borrow().get(name).cloned()
    }

    fn send(&self, req: &OutboundRequest, _timeout: Duration) -> Result<(u16, Vec<u8>), String> {
        self.sent.borrow_mut().push(req.clone());
        self.answers
            .borrow_mut()
            .pop_front()
            .unwrap_or(Ok((202, Vec::new())))
    }

    fn now_ms(&self) -> u64 {
        self.now_ms.get()
    }

    /// xorshift64*: different bytes every call, the same run after run.
    fn fill_random(&self, buf: &mut [u8]) {
        for byte in buf {
            let mut x = self.seed.get();
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.seed.set(x);
            *byte = (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8;
        }
    }

    fn log(&self, line: &str) {
        self.logs.borrow_mut().push(line.to_string());
    }
}
