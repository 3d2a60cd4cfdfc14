//! Property tests: no input makes the parsers panic, and every rejection is one clear line.

use proptest::prelude::*;
use sockscope::config::{format_duration, format_size, parse_duration, parse_size};
use sockscope::scenario;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn durations_parse_or_explain(text in any::<String>()) {
        match parse_duration(&text) {
            Ok(_) => {}
            Err(e) => {
                prop_assert!(e.contains("is not a duration"), "{}", e);
                prop_assert!(!e.contains('\n'), "one line: {}", e);
            }
        }
    }

    #[test]
    fn duration_like_text_parses_or_explains(n in 0u64..1_000_000, unit in "(ns|us|ms|s|m|h|x|)", frac in proptest::option::of(0u32..1000)) {
        let text = match frac {
            Some(f) => format!("{n}.{f}{unit}"),
            None => format!("{n}{unit}"),
        };
        if let Ok(d) = parse_duration(&text) {
            // What prints back parses back to within a microsecond's rounding.
            let again = parse_duration(&format_duration(d)).expect("formatted durations parse");
            let diff = again.abs_diff(d);
            prop_assert!(diff <= std::time::Duration::from_millis(1) || diff.as_secs_f64() <= d.as_secs_f64() * 1e-3, "{:?} vs {:?}", d, again);
        }
    }

    #[test]
    fn sizes_parse_or_explain(text in any::<String>()) {
        if let Err(e) = parse_size(&text) {
            prop_assert!(e.contains("is not a size"), "{}", e);
            prop_assert!(!e.contains('\n'), "one line: {}", e);
        }
    }

    #[test]
    fn sizes_round_trip(n in 0u64..(1 << 40)) {
        prop_assert_eq!(parse_size(&format_size(n)), Ok(n));
    }

    #[test]
    fn scenario_text_parses_or_names_file_and_line(text in any::<String>()) {
        if let Err(e) = scenario::parse("p", "p.toml", &text) {
            let e = e.to_string();
            prop_assert!(e.starts_with("p.toml:"), "{}", e);
            prop_assert!(!e.contains('\n'), "one line: {}", e);
        }
    }

    #[test]
    fn scenario_like_text_parses_or_names_file_and_line(
        key in "(body|pool|workers|think|rate|hold|body_size|server_delay|keepalive|idle_timeout|h2c|bogus)",
        value in "(\"drain\"|\"drop\"|-1|0|1|10|\"2ms\"|\"64KiB\"|\"9GiB\"|true|\"x\"|1.5|\\[\\])",
        table in "(settings|run|step|nope)",
    ) {
        let text = if table == "step" {
            format!("description = \"d\"\n[[step]]\nat = \"1s\"\ncaption = \"c\"\nset = {{ {key} = {value} }}\n")
        } else {
            format!("description = \"d\"\n[{table}]\n{key} = {value}\n")
        };
        match scenario::parse("p", "p.toml", &text) {
            Ok(s) => {
                // Whatever parses is a valid set of settings.
                let mut settings = sockscope::config::Settings::default();
                s.settings.apply(&mut settings);
                for step in &s.steps {
                    step.set.apply(&mut settings);
                }
                prop_assert!(settings.validate().is_ok(), "{}: {:?}", text, settings);
            }
            Err(e) => {
                let e = e.to_string();
                prop_assert!(e.starts_with("p.toml:"), "{}", e);
                prop_assert!(!e.contains('\n'), "one line: {}", e);
            }
        }
    }
}
