//! What `CreateProcessW` is given: the command line (arguments quoted by the MSVCRT rules
//! so they round-trip, CONTRACT M2), the environment block, and the program's full path.
//! Pure logic apart from reading the file system in [`find_program`].

use std::ffi::{OsStr, OsString};
use std::os::windows::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use torsion_transport::{ProcessBuilder, SpawnError};

const QUOTE: u16 = b'"' as u16;
const BACKSLASH: u16 = b'\\' as u16;
const SPACE: u16 = b' ' as u16;
const TAB: u16 = b'\t' as u16;

/// Append `arg` to `cmd`, quoted so that the MSVCRT argument parser (and
/// `CommandLineToArgvW`, and Rust's `std::env::args`) gives back exactly `arg`.
///
/// The rules: an argument with a space or tab, or an empty one, is put in quotes; a quote
/// is escaped with a backslash; backslashes are literal except right before a quote (an
/// escaped one, or the closing one), where each must be doubled.
///
/// # References
/// "Parsing C++ command-line arguments" (Microsoft C runtime); Daniel Colascione, "Everyone
/// quotes command line arguments the wrong way".
pub(crate) fn push_arg(cmd: &mut Vec<u16>, arg: &OsStr) {
    let wide: Vec<u16> = arg.encode_wide().collect();
    let quote = wide.is_empty() || wide.iter().any(|&c| c == SPACE || c == TAB);
    if quote {
        cmd.push(QUOTE);
    }
    let mut backslashes = 0usize;
    for &c in &wide {
        if c == BACKSLASH {
            backslashes += 1;
        } else {
            if c == QUOTE {
                // Double the backslashes before it, and escape the quote itself.
                cmd.extend(std::iter::repeat_n(BACKSLASH, backslashes + 1));
            }
            backslashes = 0;
        }
        cmd.push(c);
    }
    if quote {
        // Backslashes before the closing quote are doubled so they stay literal.
        cmd.extend(std::iter::repeat_n(BACKSLASH, backslashes));
        cmd.push(QUOTE);
    }
}

/// The command line for `argv`: `argv[0]` by the program-name rule (quoted if it has a
/// space or tab; no escapes exist there), the rest by [`push_arg`].
///
/// # Errors
/// `argv[0]` containing a `"`, which the program-name rule cannot express.
pub(crate) fn command_line(program: &OsStr, argv: &[OsString]) -> Result<Vec<u16>, SpawnError> {
    let mut cmd = Vec::new();
    if let Some(arg0) = argv.first() {
        let wide: Vec<u16> = arg0.encode_wide().collect();
        if wide.contains(&QUOTE) {
            return Err(SpawnError::invalid(
                program,
                "argv[0] contains '\"', which a Windows command line cannot carry",
            ));
        }
        let quote = wide.is_empty() || wide.iter().any(|&c| c == SPACE || c == TAB);
        if quote {
            cmd.push(QUOTE);
        }
        cmd.extend_from_slice(&wide);
        if quote {
            cmd.push(QUOTE);
        }
    }
    for arg in argv.iter().skip(1) {
        cmd.push(SPACE);
        push_arg(&mut cmd, arg);
    }
    cmd.push(0);
    Ok(cmd)
}

/// Windows compares variable names without regard to case.
fn upper(key: &OsStr) -> Vec<u16> {
    let wide: Vec<u16> = key.encode_wide().collect();
    char::decode_utf16(wide.iter().copied())
        .flat_map(|c| match c {
            Ok(c) => {
                let mut buf = [0u16; 2];
                c.to_uppercase()
                    .flat_map(|u| u.encode_utf16(&mut buf).to_vec())
                    .collect::<Vec<_>>()
            }
            Err(e) => vec![e.unpaired_surrogate()],
        })
        .collect()
}

/// The child's environment (CONTRACT G2, M2): the parent's (unless `env_clear`), with the
/// builder's changes applied by case-insensitive name, sorted case-insensitively as
/// `CreateProcessW` expects.
pub(crate) fn environment<I>(builder: &ProcessBuilder, parent: I) -> Vec<(OsString, OsString)>
where
    I: IntoIterator<Item = (OsString, OsString)>,
{
    let mut vars: Vec<(OsString, OsString)> = if builder.get_env_clear() {
        Vec::new()
    } else {
        parent.into_iter().collect()
    };
    for (k, v) in builder.get_env_changes() {
        let key = upper(k);
        vars.retain(|(old, _)| upper(old) != key);
        if let Some(v) = v {
            vars.push((k.clone(), v.clone()));
        }
    }
    vars.sort_by_cached_key(|(k, _)| upper(k));
    vars
}

/// The environment block: `NAME=value\0` for each variable, then one more `\0` (two for
/// an empty environment).
pub(crate) fn environment_block(vars: &[(OsString, OsString)]) -> Vec<u16> {
    let mut block = Vec::new();
    for (k, v) in vars {
        block.extend(k.encode_wide());
        block.push(b'=' as u16);
        block.extend(v.encode_wide());
        block.push(0);
    }
    if block.is_empty() {
        block.push(0);
    }
    block.push(0);
    block
}

/// `s` as a NUL-terminated wide string.
pub(crate) fn wide(s: &OsStr) -> Vec<u16> {
    s.encode_wide().chain(std::iter::once(0)).collect()
}

fn has_separator(program: &OsStr) -> bool {
    program
        .encode_wide()
        .any(|c| c == BACKSLASH || c == b'/' as u16 || c == b':' as u16)
}

/// Where `program` is (CONTRACT G3): a name with a path separator as given; otherwise the
/// first match on the child's `PATH` (if the builder sets one) else the parent's, then the
/// system directory. `.exe` is appended to a name without an extension, as
/// `CreateProcessW` does. `None` when nothing matches.
pub(crate) fn find_program(
    program: &OsStr,
    child_path: Option<&OsStr>,
    system_dir: Option<PathBuf>,
) -> Option<PathBuf> {
    let with_ext = |p: PathBuf| {
        if p.extension().is_none() {
            let mut s = p.into_os_string();
            s.push(".exe");
            PathBuf::from(s)
        } else {
            p
        }
    };
    if has_separator(program) {
        return Some(with_ext(PathBuf::from(program)));
    }
    let parent_path = std::env::var_os("PATH");
    let path = child_path.map(OsStr::to_owned).or(parent_path);
    let dirs = path
        .as_deref()
        .map(|p| std::env::split_paths(p).collect::<Vec<_>>())
        .unwrap_or_default();
    dirs.into_iter()
        .chain(system_dir)
        .map(|d| with_ext(d.join(program)))
        .find(|p| p.is_file())
}

/// The child's `PATH` if the builder sets one (by case-insensitive name).
pub(crate) fn child_path(builder: &ProcessBuilder) -> Option<&OsStr> {
    builder
        .get_env_changes()
        .iter()
        .find(|(k, _)| upper(k) == upper(OsStr::new("PATH")))
        .and_then(|(_, v)| v.as_deref())
}

/// For messages: the path lossily.
pub(crate) fn show(p: &Path) -> String {
    p.display().to_string()
}

/// Decode a wide string (for tests and logs).
#[allow(dead_code)]
pub(crate) fn from_wide(w: &[u16]) -> OsString {
    OsString::from_wide(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The MSVCRT (2008 and later) command-line parser, for the arguments after argv[0]:
    /// what the child's C runtime, `CommandLineToArgvW` and Rust's `std::env::args` do.
    fn parse(cmd: &[u16]) -> Vec<OsString> {
        let cmd: Vec<u16> = cmd.iter().copied().take_while(|&c| c != 0).collect();
        let mut i = 0;
        let mut out = Vec::new();
        // argv[0]: up to the closing quote, or the first space or tab.
        let mut arg0 = Vec::new();
        if cmd.first() == Some(&QUOTE) {
            i = 1;
            while i < cmd.len() && cmd[i] != QUOTE {
                arg0.push(cmd[i]);
                i += 1;
            }
            i += 1;
        } else {
            while i < cmd.len() && cmd[i] != SPACE && cmd[i] != TAB {
                arg0.push(cmd[i]);
                i += 1;
            }
        }
        out.push(OsString::from_wide(&arg0));
        loop {
            while i < cmd.len() && (cmd[i] == SPACE || cmd[i] == TAB) {
                i += 1;
            }
            if i >= cmd.len() {
                break;
            }
            let mut arg = Vec::new();
            let mut in_quotes = false;
            while i < cmd.len() {
                let mut n = 0;
                while i < cmd.len() && cmd[i] == BACKSLASH {
                    n += 1;
                    i += 1;
                }
                if i < cmd.len() && cmd[i] == QUOTE {
                    arg.extend(std::iter::repeat_n(BACKSLASH, n / 2));
                    if n % 2 == 1 {
                        arg.push(QUOTE);
                        i += 1;
                    } else if in_quotes && cmd.get(i + 1) == Some(&QUOTE) {
                        arg.push(QUOTE);
                        i += 2;
                    } else {
                        in_quotes = !in_quotes;
                        i += 1;
                    }
                } else {
                    arg.extend(std::iter::repeat_n(BACKSLASH, n));
                    if i >= cmd.len() || (!in_quotes && (cmd[i] == SPACE || cmd[i] == TAB)) {
                        break;
                    }
                    arg.push(cmd[i]);
                    i += 1;
                }
            }
            out.push(OsString::from_wide(&arg));
        }
        out
    }

    fn round_trip(args: &[&str]) {
        let argv: Vec<OsString> = std::iter::once("prog")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        let cmd = command_line(OsStr::new("prog"), &argv).unwrap();
        assert_eq!(parse(&cmd), argv, "{:?}", from_wide(&cmd));
    }

    #[test]
    fn m2_arguments_round_trip_through_the_msvcrt_rules() {
        round_trip(&["plain", "two words", ""]);
        round_trip(&[r#"a"b"#, r#""quoted""#, r#"\"#, r#"\\"#, r#"a\"#, r#"a b\"#]);
        round_trip(&[r#"a\\b"#, r#"a\\"b"#, r#"\\\""#, r#"C:\Program Files\x\"#]);
        round_trip(&["tab\there", "new\nline", "ünïcödé ✓", "%PATH%", "^&|<>"]);
        round_trip(&[r#"" "#, r#" "\" "#, "trailing space ", " leading"]);
    }

    #[test]
    fn m2_quoting_examples() {
        let q = |s: &str| {
            let mut v = Vec::new();
            push_arg(&mut v, OsStr::new(s));
            String::from_utf16(&v).unwrap()
        };
        assert_eq!(q("abc"), "abc");
        assert_eq!(q(""), r#""""#);
        assert_eq!(q("a b"), r#""a b""#);
        assert_eq!(q(r#"a"b"#), r#"a\"b"#);
        assert_eq!(q(r#"a\b"#), r#"a\b"#);
        assert_eq!(q(r#"a b\"#), r#""a b\\""#);
        assert_eq!(q(r#"a\"b"#), r#"a\\\"b"#);
    }

    #[test]
    fn g1_quote_in_argv0_is_invalid_input() {
        let argv = [OsString::from("a\"b")];
        let e = command_line(OsStr::new("a"), &argv).unwrap_err();
        assert_eq!(e.step, torsion_transport::SpawnStep::InvalidInput);
    }

    #[test]
    fn m2_environment_is_exact_sorted_and_case_insensitive() {
        let parent = vec![
            (OsString::from("Path"), OsString::from(r"C:\bin")),
            (OsString::from("b"), OsString::from("1")),
            (OsString::from("A"), OsString::from("2")),
            (OsString::from("GONE"), OsString::from("x")),
        ];
        let b = ProcessBuilder::new("x")
            .env("PATH", r"D:\other")
            .env("c", "3")
            .env_remove("gone");
        let env = environment(&b, parent.clone());
        let names: Vec<_> = env.iter().map(|(k, v)| format!("{k:?}={v:?}")).collect();
        assert_eq!(
            names,
            [
                r#""A"="2""#,
                r#""b"="1""#,
                r#""c"="3""#,
                r#""PATH"="D:\\other""#
            ]
        );
        let cleared = environment(&ProcessBuilder::new("x").env_clear().env("K", "v"), parent);
        assert_eq!(cleared, [(OsString::from("K"), OsString::from("v"))]);
        let block = environment_block(&cleared);
        assert_eq!(String::from_utf16(&block).unwrap(), "K=v\0\0");
        assert_eq!(environment_block(&[]), [0, 0]);
    }
}
