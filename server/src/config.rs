//! Command-line options of `sessile-server` and their defaults.

use std::path::PathBuf;

/// Where the server listens and what it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Address to bind; loopback by default.
    pub host: String,
    /// Port to bind; 0 picks a free port. `PORT` in the environment overrides the default.
    pub port: u16,
    /// Directory served at `/` (the demo page).
    pub www: PathBuf,
    /// Directory served at `/pkg/` (wasm-pack output).
    pub pkg: PathBuf,
    /// Directory served at `/js/` (the compiled TypeScript wrapper).
    pub js: PathBuf,
}

/// Default port of the demo.
pub const DEFAULT_PORT: u16 = 8787;

const USAGE: &str =
    "usage: sessile-server [--host ADDR] [--port N] [--www DIR] [--pkg DIR] [--js DIR]
  --host ADDR  address to bind (default 127.0.0.1)
  --port N     port to bind, 0 for any free port (default $PORT or 8787)
  --www DIR    demo page served at / (default www)
  --pkg DIR    wasm-pack output served at /pkg/ (default pkg)
  --js DIR     compiled TypeScript wrapper served at /js/ (default js/dist)";

impl Config {
    /// Parses arguments (without the program name); `env_port` is `$PORT`.
    /// `Err` carries the message to print, usage included.
    pub fn from_args<I: IntoIterator<Item = String>>(
        args: I,
        env_port: Option<String>,
    ) -> Result<Self, String> {
        let parse_port = |s: &str| {
            s.parse::<u16>()
                .map_err(|_| format!("invalid port `{s}`: expected 0-65535\n{USAGE}"))
        };
        let mut cfg = Config {
            host: "127.0.0.1".into(),
            port: match env_port.as_deref() {
                Some(p) if !p.is_empty() => parse_port(p)?,
                _ => DEFAULT_PORT,
            },
            www: "www".into(),
            pkg: "pkg".into(),
            js: "js/dist".into(),
        };
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                return Err(USAGE.into());
            }
            let value = args
                .next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
            match flag.as_str() {
                "--host" => cfg.host = value,
                "--port" => cfg.port = parse_port(&value)?,
                "--www" => cfg.www = value.into(),
                "--pkg" => cfg.pkg = value.into(),
                "--js" => cfg.js = value.into(),
                _ => return Err(format!("unknown option `{flag}`\n{USAGE}")),
            }
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_and_port_from_env() {
        let c = Config::from_args(args(&[]), None).unwrap();
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", DEFAULT_PORT));
        assert_eq!(
            Config::from_args(args(&[]), Some("9000".into()))
                .unwrap()
                .port,
            9000
        );
        let c =
            Config::from_args(args(&["--port", "0", "--www", "x"]), Some("9000".into())).unwrap();
        assert_eq!((c.port, c.www), (0, PathBuf::from("x")));
    }

    #[test]
    fn bad_arguments_say_why() {
        assert!(Config::from_args(args(&["--port", "70000"]), None)
            .unwrap_err()
            .contains("invalid port"));
        assert!(Config::from_args(args(&["--nope", "1"]), None)
            .unwrap_err()
            .contains("unknown option"));
        assert!(Config::from_args(args(&["--www"]), None)
            .unwrap_err()
            .contains("needs a value"));
        assert!(Config::from_args(args(&[]), Some("http".into())).is_err());
    }
}
