//! How holders and members are printed: one line of text each, or JSON
//! objects with the same fields. Pure functions of the crate's types.

use chrono::{DateTime, SecondsFormat, Utc};
use mongodb::bson::{Bson, Document};
use mongoelector::{LockInfo, NodeStatus};
use serde_json::{json, Value};

/// A server time as RFC 3339 in UTC, to the millisecond.
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn metadata_json(metadata: &Option<Document>) -> Value {
    metadata
        .clone()
        .map_or(Value::Null, |m| Bson::Document(m).into_relaxed_extjson())
}

/// `host H pid P since T fence F expires T`, the holder's identity.
pub fn holder(info: &LockInfo) -> String {
    let mut line = format!(
        "host {} pid {} since {} fence {} expires {}",
        info.host,
        info.pid,
        time(info.created),
        info.fence,
        time(info.expires)
    );
    if let Some(m) = &info.metadata {
        line.push_str(&format!(" metadata {}", metadata_json(&Some(m.clone()))));
    }
    line
}

/// The holder as a JSON object.
pub fn holder_json(info: &LockInfo) -> Value {
    json!({
        "key": info.key,
        "host": info.host,
        "pid": info.pid,
        "uuid": info.uuid,
        "fence": info.fence,
        "since": time(info.created),
        "expires": time(info.expires),
        "metadata": metadata_json(&info.metadata),
    })
}

/// One member of an election, as a line.
pub fn member(m: &NodeStatus) -> String {
    let mut line = format!(
        "{} host {} pid {} ttl {}",
        if m.is_master { "master  " } else { "follower" },
        m.host,
        m.pid,
        humantime::format_duration(m.ttl),
    );
    if let Some(fence) = m.fence {
        line.push_str(&format!(" fence {fence}"));
    }
    if let Some(version) = &m.app_version {
        line.push_str(&format!(" version {version}"));
    }
    line.push_str(&format!(" reported {}", time(m.timestamp)));
    line
}

/// One member of an election, as a JSON object.
pub fn member_json(m: &NodeStatus) -> Value {
    json!({
        "uuid": m.uuid,
        "host": m.host,
        "pid": m.pid,
        "master": m.is_master,
        "running": m.running,
        "fence": m.fence,
        "ttl_ms": u64::try_from(m.ttl.as_millis()).unwrap_or(u64::MAX),
        "last_poll": m.last_poll.map(time),
        "app_version": m.app_version,
        "metadata": metadata_json(&m.metadata),
        "reported": time(m.timestamp),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    fn info() -> LockInfo {
        LockInfo {
            key: "k".into(),
            uuid: "u".into(),
            host: "web-1".into(),
            pid: 42,
            created: DateTime::from_timestamp_millis(1_000).unwrap(),
            expires: DateTime::from_timestamp_millis(31_000).unwrap(),
            fence: 7,
            metadata: Some(doc! { "job": "report" }),
        }
    }

    #[test]
    fn a_holder_names_host_pid_since_and_fence() {
        assert_eq!(
            holder(&info()),
            "host web-1 pid 42 since 1970-01-01T00:00:01.000Z fence 7 \
             expires 1970-01-01T00:00:31.000Z metadata {\"job\":\"report\"}"
        );
        let v = holder_json(&info());
        assert_eq!(v["fence"], 7);
        assert_eq!(v["expires"], "1970-01-01T00:00:31.000Z");
        assert_eq!(v["metadata"]["job"], "report");
    }
}
