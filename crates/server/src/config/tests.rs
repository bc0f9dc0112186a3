//! Validation of the settings: secrets hidden from `Debug`, signing
//! algorithms, probe intervals, outage options.

use gatehouse_keys::{Alg, Kek};

use super::{DatabaseUrl, RawConfig, Settings};

#[allow(clippy::unwrap_used)]
mod database_url_tests {
    use super::*;

    #[test]
    fn settings_debug_hides_the_database_password() {
        for url in [
            "postgres://gatehouse:s3cr3t-pw@db.example:5432/gatehouse",
            "postgres://db.example/gatehouse?user=gh&password=s3cr3t-pw",
        ] {
            let raw = RawConfig {
                database_url: Some(url.to_owned()),
                ..RawConfig::default()
            };
            let settings = Settings::resolve(raw, Some(Kek::generate().to_base64url())).unwrap();
            assert_eq!(&*settings.database_url, url, "used unchanged");
            let shown = format!("{settings:?}");
            assert!(!shown.contains("s3cr3t-pw"), "{shown}");
            assert!(shown.contains("db.example"), "{shown}");
        }
        let shown = format!("{:?}", DatabaseUrl::new("not a url s3cr3t-pw"));
        assert_eq!(shown, "DatabaseUrl(<hidden>)");
    }

    #[test]
    fn signing_algs_are_validated() {
        let resolve = |algs: &[&str]| {
            let raw = RawConfig {
                signing_algs: Some(algs.iter().map(|a| (*a).to_owned()).collect()),
                ..RawConfig::default()
            };
            Settings::resolve(raw, Some(Kek::generate().to_base64url()))
                .map(|s| s.rotation.signing_algs)
                .map_err(|e| e.to_string())
        };
        let default =
            Settings::resolve(RawConfig::default(), Some(Kek::generate().to_base64url())).unwrap();
        assert_eq!(default.rotation.signing_algs, [Alg::RS256, Alg::ES256]);
        assert_eq!(
            resolve(&["RS256", "EdDSA"]).unwrap(),
            [Alg::RS256, Alg::EdDSA]
        );
        let e = resolve(&["RS256", "HS256"]).unwrap_err();
        assert!(e.contains("\"HS256\" is not a signing algorithm"), "{e}");
        let e = resolve(&["ES256"]).unwrap_err();
        assert!(e.contains("must include RS256"), "{e}");
        let e = resolve(&["RS256", "RS256"]).unwrap_err();
        assert!(e.contains("listed twice"), "{e}");
    }

    #[test]
    fn db_probe_interval_is_validated() {
        let resolve = |ms: Option<i64>| {
            let raw = RawConfig {
                db_probe_interval_ms: ms,
                ..RawConfig::default()
            };
            Settings::resolve(raw, Some(Kek::generate().to_base64url()))
                .map(|s| s.store_options().db_probe_interval)
                .map_err(|e| e.to_string())
        };
        let ms = std::time::Duration::from_millis;
        assert_eq!(resolve(None).unwrap(), ms(250));
        assert_eq!(resolve(Some(1000)).unwrap(), ms(1000));
        for bad in [0, 9, -250, 60_001] {
            let e = resolve(Some(bad)).unwrap_err();
            assert!(
                e.contains("db_probe_interval_ms must be between 10 and 60000"),
                "{e}"
            );
        }
    }
}

#[allow(clippy::unwrap_used)]
mod outage_tests {
    use super::*;

    fn resolve(reserve: Option<i64>, staleness: Option<i64>) -> Result<Settings, String> {
        let raw = RawConfig {
            status_index_reserve_max: reserve,
            outage_staleness_secs: staleness,
            ..RawConfig::default()
        };
        Settings::resolve(raw, Some(Kek::generate().to_base64url())).map_err(|e| e.to_string())
    }

    #[test]
    fn outage_options_have_defaults_and_are_validated() {
        let s = resolve(None, None).unwrap();
        assert_eq!(s.status_index_reserve_max, 65_536);
        assert_eq!(s.outage_staleness_secs, 10);
        let s = resolve(Some(2048), Some(0)).unwrap();
        assert_eq!(s.status_index_reserve_max, 2048);
        assert_eq!(
            s.outage_staleness_secs, 0,
            "0 turns answering from memory off"
        );
        assert_eq!(
            resolve(Some(1 << 20), Some(300))
                .unwrap()
                .status_index_reserve_max,
            1 << 20
        );
        for bad in [0, 1024, 3000, 100_000, 1 << 21, -4096] {
            let e = resolve(Some(bad), None).unwrap_err();
            assert!(
                e.contains("status_index_reserve_max must be a power of two from 2048 to 1048576"),
                "{bad}: {e}"
            );
        }
        for bad in [-1, 301] {
            let e = resolve(None, Some(bad)).unwrap_err();
            assert!(
                e.contains("outage_staleness_secs must be between 0"),
                "{bad}: {e}"
            );
        }
    }
}

#[allow(clippy::unwrap_used)]
mod password_tests {
    use super::*;

    fn resolve(min: Option<i64>) -> Result<usize, String> {
        let raw = RawConfig {
            password_min_length: min,
            ..RawConfig::default()
        };
        Settings::resolve(raw, Some(Kek::generate().to_base64url()))
            .map(|s| s.password_min_length)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn password_min_length_has_a_default_and_nist_bounds() {
        assert_eq!(resolve(None).unwrap(), 12);
        assert_eq!(resolve(Some(8)).unwrap(), 8);
        assert_eq!(resolve(Some(15)).unwrap(), 15);
        assert_eq!(resolve(Some(64)).unwrap(), 64);
        for bad in [-1, 0, 7, 65, i64::MAX] {
            let e = resolve(Some(bad)).unwrap_err();
            assert!(
                e.contains("password_min_length must be between 8 and 64 characters"),
                "{bad}: {e}"
            );
        }
    }
}

#[allow(clippy::unwrap_used)]
mod pushed_requests_tests {
    use super::*;

    /// `require_pushed_authorization_requests`: false unless set, read
    /// from the file's TOML.
    #[test]
    fn require_pushed_authorization_requests_defaults_to_false() {
        let kek = || Some(Kek::generate().to_base64url());
        let s = Settings::resolve(RawConfig::default(), kek()).unwrap();
        assert!(!s.require_pushed_authorization_requests);
        let raw: RawConfig =
            toml::from_str("require_pushed_authorization_requests = true").unwrap();
        let s = Settings::resolve(raw, kek()).unwrap();
        assert!(s.require_pushed_authorization_requests);
    }

    /// The environment variable: `true`, `false`, empty (unset), or an
    /// error naming it.
    #[test]
    fn env_bool_reads_true_and_false_only() {
        const VAR: &str = "GATEHOUSE_TEST_ENV_BOOL_ONLY_HERE";
        for (value, want) in [("true", Some(true)), ("false", Some(false)), ("", None)] {
            std::env::set_var(VAR, value);
            assert_eq!(super::super::env_bool(VAR).unwrap(), want, "{value:?}");
        }
        std::env::set_var(VAR, "yes");
        let e = super::super::env_bool(VAR).unwrap_err().to_string();
        assert!(e.contains(VAR) && e.contains("true or false"), "{e}");
        std::env::remove_var(VAR);
        assert_eq!(super::super::env_bool(VAR).unwrap(), None);
    }
}
