//! Scenario files: TOML presets for one experiment each, with optional timed steps. The
//! presets in `assets/scenarios/` are compiled in, so `--scenario NAME` works anywhere.
//!
//! ```toml
//! description = "one line: what this shows"
//! watch = "what to look at while it runs"
//! [run]                       # optional: duration, requests, linger, interval
//! [settings]                  # any workload setting: body, pool, workers, think, ...
//! body = "drop"
//! body_size = "64KiB"
//! [[step]]                    # optional, applied `at` after the start
//! at = "20s"
//! caption = "Now drain the bodies"
//! set = { body = "drain" }
//! ```

use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

use crate::Error;
use crate::config::{
    BodyMode, MAX_BODY_SIZE, MAX_WORKERS, MIN_INTERVAL, Settings, format_duration, format_size,
    parse_duration, parse_port_range, parse_size,
};

/// The compiled-in presets, by name, in the order `--list-scenarios` prints them.
pub const PRESETS: &[(&str, &str)] = &[
    (
        "undrained",
        include_str!("../assets/scenarios/undrained.toml"),
    ),
    ("drained", include_str!("../assets/scenarios/drained.toml")),
    ("pool-2", include_str!("../assets/scenarios/pool-2.toml")),
    ("pool-10", include_str!("../assets/scenarios/pool-10.toml")),
    (
        "tiny-bodies",
        include_str!("../assets/scenarios/tiny-bodies.toml"),
    ),
    ("leak", include_str!("../assets/scenarios/leak.toml")),
    (
        "server-close",
        include_str!("../assets/scenarios/server-close.toml"),
    ),
    ("no-pool", include_str!("../assets/scenarios/no-pool.toml")),
    (
        "port-exhaustion",
        include_str!("../assets/scenarios/port-exhaustion.toml"),
    ),
    ("h2c", include_str!("../assets/scenarios/h2c.toml")),
    ("tour", include_str!("../assets/scenarios/tour.toml")),
];

/// A parsed, checked scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub watch: String,
    pub run: RunPatch,
    pub settings: SettingsPatch,
    /// Sorted by `at`.
    pub steps: Vec<Step>,
}

/// A timed change of settings with a caption to show.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(deserialize_with = "de_duration")]
    pub at: Duration,
    pub caption: String,
    #[serde(default)]
    pub set: SettingsPatch,
}

/// Run-level values a scenario may set.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunPatch {
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub duration: Option<Duration>,
    #[serde(default, deserialize_with = "de_opt_requests")]
    pub requests: Option<u64>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub linger: Option<Duration>,
    #[serde(default, deserialize_with = "de_opt_interval")]
    pub interval: Option<Duration>,
    /// `"41000-41019"`: the client's ephemeral ports (`--local-ports`).
    #[serde(default, deserialize_with = "de_opt_port_range")]
    pub local_ports: Option<(u16, u16)>,
    #[serde(default)]
    pub backend: Option<crate::sockets::Backend>,
}

/// Workload settings to change; absent keys leave a setting as it is.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    #[serde(default)]
    pub body: Option<BodyMode>,
    #[serde(default, deserialize_with = "de_opt_pool")]
    pub pool: Option<usize>,
    #[serde(default, deserialize_with = "de_opt_workers")]
    pub workers: Option<usize>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub think: Option<Duration>,
    #[serde(default, deserialize_with = "de_opt_rate")]
    pub rate: Option<f64>,
    #[serde(default)]
    pub paused: Option<bool>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub hold: Option<Duration>,
    #[serde(default, deserialize_with = "de_opt_size")]
    pub body_size: Option<u64>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub server_delay: Option<Duration>,
    #[serde(default)]
    pub keepalive: Option<bool>,
    #[serde(default, deserialize_with = "de_opt_positive_duration")]
    pub idle_timeout: Option<Duration>,
    #[serde(default)]
    pub h2c: Option<bool>,
}

impl SettingsPatch {
    /// Writes every value this patch holds into `s`.
    pub fn apply(&self, s: &mut Settings) {
        fn set<T: Clone>(dst: &mut T, src: &Option<T>) {
            if let Some(v) = src {
                *dst = v.clone();
            }
        }
        set(&mut s.body, &self.body);
        set(&mut s.pool, &self.pool);
        set(&mut s.workers, &self.workers);
        set(&mut s.think, &self.think);
        if self.rate.is_some() {
            s.rate = self.rate;
        }
        set(&mut s.paused, &self.paused);
        set(&mut s.hold, &self.hold);
        set(&mut s.body_size, &self.body_size);
        set(&mut s.server_delay, &self.server_delay);
        set(&mut s.keepalive, &self.keepalive);
        set(&mut s.idle_timeout, &self.idle_timeout);
        set(&mut s.h2c, &self.h2c);
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    description: String,
    #[serde(default)]
    watch: String,
    #[serde(default)]
    run: RunPatch,
    #[serde(default)]
    settings: SettingsPatch,
    #[serde(default, rename = "step")]
    steps: Vec<Step>,
}

/// Parses scenario text; `origin` (a file name) prefixes every error, with the line and
/// the key: `leak.toml:7: key `workers`: workers must be at least 1`.
pub fn parse(name: &str, origin: &str, text: &str) -> Result<Scenario, Error> {
    let file: ScenarioFile = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |span| {
            text[..span.start.min(text.len())].matches('\n').count() + 1
        });
        let key = text
            .lines()
            .nth(line - 1)
            .and_then(|l| l.split_once('='))
            .map(|(k, _)| k.trim().trim_start_matches('{').trim())
            .filter(|k| !k.is_empty() && !e.message().contains(&format!("`{k}`")))
            .map(|k| format!("key `{k}`: "))
            .unwrap_or_default();
        let message = e.message().trim().replace('\n', " ");
        Error::usage(format!("{origin}:{line}: {key}{message}"))
    })?;
    let mut steps = file.steps;
    steps.sort_by_key(|s| s.at);
    Ok(Scenario {
        name: name.to_owned(),
        description: file.description,
        watch: file.watch,
        run: file.run,
        settings: file.settings,
        steps,
    })
}

/// Loads a preset by name, or a file by path.
pub fn load(spec: &str) -> Result<Scenario, Error> {
    if let Some((name, text)) = PRESETS.iter().find(|(n, _)| *n == spec) {
        return parse(name, &format!("assets/scenarios/{name}.toml"), text);
    }
    let path = std::path::Path::new(spec);
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let name = path
                .file_stem()
                .map_or(spec.to_owned(), |s| s.to_string_lossy().into_owned());
            parse(&name, spec, &text)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::usage(format!(
            "no scenario named '{spec}' and no such file; `sockscope --list-scenarios` lists the presets"
        ))),
        Err(e) => Err(Error::usage(format!(
            "cannot read scenario file {spec}: {e}"
        ))),
    }
}

/// One line per preset: name and description, for `--list-scenarios`.
pub fn list() -> Result<String, Error> {
    let mut out = String::new();
    for (name, _) in PRESETS {
        let s = load(name)?;
        out.push_str(&format!("{name:<13} {}\n", s.description));
    }
    Ok(out)
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(de::Error::custom)
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

fn de_opt_positive_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let v = de_duration(d)?;
    if v.is_zero() {
        return Err(de::Error::custom("must be above 0"));
    }
    Ok(Some(v))
}

fn de_opt_port_range<'de, D: Deserializer<'de>>(d: D) -> Result<Option<(u16, u16)>, D::Error> {
    let text = String::deserialize(d)?;
    parse_port_range(&text).map(Some).map_err(de::Error::custom)
}

fn de_opt_interval<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let v = de_duration(d)?;
    if v < MIN_INTERVAL {
        return Err(de::Error::custom(format!(
            "interval {} is too short: at least {}",
            format_duration(v),
            format_duration(MIN_INTERVAL)
        )));
    }
    Ok(Some(v))
}

/// An integer in `min..=max`, with a message that names the bounds.
fn de_bounded<'de, D: Deserializer<'de>>(
    d: D,
    what: &str,
    min: i64,
    max: i64,
) -> Result<i64, D::Error> {
    let v = i64::deserialize(d)?;
    if v < min || v > max {
        return Err(de::Error::custom(format!(
            "{what} must be from {min} to {max}, not {v}"
        )));
    }
    Ok(v)
}

fn de_opt_pool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    de_bounded(d, "pool", 0, 1_000_000).map(|v| Some(v as usize))
}

fn de_opt_workers<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    de_bounded(d, "workers", 1, MAX_WORKERS as i64).map(|v| Some(v as usize))
}

fn de_opt_requests<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    de_bounded(d, "requests", 1, i64::MAX).map(|v| Some(v as u64))
}

fn de_opt_rate<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = f64::deserialize(d)?;
    if !(v.is_finite() && v > 0.0) {
        return Err(de::Error::custom(
            "rate must be a number of requests per second above 0",
        ));
    }
    Ok(Some(v))
}

/// A size as text (`"64KiB"`) or as a number of bytes.
fn de_opt_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    let bytes = match Size::deserialize(d)? {
        Size::Bytes(n) => n,
        Size::Text(t) => parse_size(&t).map_err(de::Error::custom)?,
    };
    if bytes > MAX_BODY_SIZE {
        return Err(de::Error::custom(format!(
            "body_size {} is over the cap of {}",
            format_size(bytes),
            format_size(MAX_BODY_SIZE)
        )));
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses_and_validates() {
        for (name, _) in PRESETS {
            let s = load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!s.description.is_empty(), "{name}");
            assert!(!s.watch.is_empty(), "{name}: say what to watch for");
            let mut settings = Settings::default();
            s.settings.apply(&mut settings);
            settings
                .validate()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            for step in &s.steps {
                step.set.apply(&mut settings);
                settings
                    .validate()
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
        assert!(list().unwrap().lines().count() == PRESETS.len());
    }

    #[test]
    fn steps_are_sorted_and_applied() {
        let s = parse(
            "t",
            "t.toml",
            r#"
description = "d"
watch = "w"
[settings]
pool = 2
body_size = 11
[[step]]
at = "20s"
caption = "second"
set = { pool = 10, think = "0ms" }
[[step]]
at = "1.5s"
caption = "first"
set = { body = "drop", body_size = "1MiB" }
"#,
        )
        .unwrap();
        assert_eq!(s.steps[0].caption, "first");
        assert_eq!(s.steps[0].at, Duration::from_millis(1500));
        let mut set = Settings::default();
        s.settings.apply(&mut set);
        assert_eq!((set.pool, set.body_size), (2, 11));
        s.steps[0].set.apply(&mut set);
        s.steps[1].set.apply(&mut set);
        assert_eq!(set.body, BodyMode::Drop);
        assert_eq!(set.body_size, 1 << 20);
        assert_eq!(set.pool, 10);
        assert_eq!(set.think, Duration::ZERO);
        assert_eq!(set.workers, 10, "untouched settings keep their value");
    }

    #[test]
    fn errors_name_the_file_line_and_key() {
        let cases = [
            (
                "description = \"d\"\n[settings]\nbdy = \"drop\"\n",
                "x.toml:3:",
                "bdy",
            ),
            (
                "description = \"d\"\n[settings]\nworkers = 0\n",
                "x.toml:3:",
                "workers must be from 1",
            ),
            (
                "description = \"d\"\n[settings]\npool = -1\n",
                "x.toml:3:",
                "pool must be from 0",
            ),
            (
                "description = \"d\"\n[settings]\npool = \"two\"\n",
                "x.toml:3:",
                "key `pool`",
            ),
            (
                "description = \"d\"\n[run]\ninterval = \"1ms\"\n",
                "x.toml:3:",
                "too short",
            ),
            (
                "description = \"d\"\n\n[settings]\nbody_size = \"2GiB\"\n",
                "x.toml:4:",
                "over the cap",
            ),
            (
                "description = \"d\"\n[settings]\nthink = \"soon\"\n",
                "x.toml:3:",
                "not a duration",
            ),
            (
                "description = \"d\"\n[settings]\nbody = \"eat\"\n",
                "x.toml:3:",
                "eat",
            ),
            ("[settings]\npool = 1\n", "x.toml:1:", "description"),
            (
                "description = \"d\"\n[[step]]\nat = \"1s\"\ncaption = \"c\"\nset = { wrkers = 2 }\n",
                "x.toml:5:",
                "wrkers",
            ),
            ("description = [\n", "x.toml:", ""),
        ];
        for (text, at, needle) in cases {
            let e = parse("x", "x.toml", text).unwrap_err().to_string();
            assert!(e.starts_with(at), "{text:?}: {e}");
            assert!(e.contains(needle), "{text:?}: {e}");
            assert!(!e.contains('\n'), "{text:?}: one line: {e}");
        }
    }

    #[test]
    fn unknown_names_point_to_the_list() {
        let e = load("no-such-preset").unwrap_err().to_string();
        assert!(e.contains("--list-scenarios"), "{e}");
    }
}
