//! The head of a raw SIP datagram, read the way RFC 3261 §7 frames it: the
//! start line, the header fields with continuation lines unfolded (§7.3.1),
//! and where the body starts. Nothing is interpreted here; values stay
//! bytes because a quoted string may legally carry any octet (§25.1).

/// One header field as it arrived: its name and its unfolded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The name with surrounding whitespace removed (`TO :` is `TO`).
    pub name: Vec<u8>,
    /// The value with each fold (CRLF + whitespace) turned into one space
    /// and outer whitespace trimmed.
    pub value: Vec<u8>,
}

impl Field {
    /// The long form of the name, lower-case (`v` → `via`, `l` →
    /// `content-length`: the compact forms of §7.3.3 and RFC 3515/4028).
    pub fn canonical(&self) -> String {
        let lower = String::from_utf8_lossy(&self.name).to_ascii_lowercase();
        let long = match lower.as_str() {
            "i" => "call-id",
            "m" => "contact",
            "e" => "content-encoding",
            "l" => "content-length",
            "c" => "content-type",
            "f" => "from",
            "s" => "subject",
            "k" => "supported",
            "t" => "to",
            "v" => "via",
            "r" => "refer-to",
            "o" => "event",
            "u" => "allow-events",
            "b" => "referred-by",
            "x" => "session-expires",
            _ => return lower,
        };
        long.to_string()
    }

    pub fn is(&self, long_name: &str) -> bool {
        self.canonical() == long_name
    }
}

/// The framed head of a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The first line, without its line end.
    pub start: Vec<u8>,
    pub fields: Vec<Field>,
    /// Offset of the first body byte; `None` when the datagram ends before
    /// the empty line that closes the header section.
    pub body_at: Option<usize>,
    /// A line that is neither a header field nor a continuation (no colon,
    /// or a name that is not a token), if any.
    pub bad_line: bool,
    /// Some value spanned continuation lines.
    pub folded: bool,
}

impl Head {
    /// Every field with this long name, in order.
    pub fn all<'a>(&'a self, long_name: &'a str) -> impl Iterator<Item = &'a Field> + 'a {
        self.fields.iter().filter(move |f| f.is(long_name))
    }

    /// The first field with this long name.
    pub fn first(&self, long_name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.is(long_name))
    }
}

/// Split a datagram into its head. Lines end in CRLF; a bare LF is taken
/// too, as most stacks do.
pub fn read(datagram: &[u8]) -> Head {
    let mut lines = Vec::new();
    let mut at = 0;
    let mut body_at = None;
    while at < datagram.len() {
        let end = datagram[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| at + p);
        let (line, next) = match end {
            Some(e) => (&datagram[at..e], e + 1),
            None => (&datagram[at..], datagram.len()),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() && end.is_some() && !lines.is_empty() {
            body_at = Some(next);
            break;
        }
        lines.push(line);
        at = next;
    }
    let mut iter = lines.into_iter();
    let start = iter.next().unwrap_or_default().to_vec();
    let mut fields: Vec<Field> = Vec::new();
    let mut bad_line = false;
    let mut folded = false;
    for line in iter {
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            // A continuation: part of the previous value (§7.3.1).
            folded = true;
            match fields.last_mut() {
                Some(f) => {
                    let more = trim(line);
                    if !more.is_empty() {
                        if !f.value.is_empty() {
                            f.value.push(b' ');
                        }
                        f.value.extend_from_slice(more);
                    }
                }
                None => bad_line = true,
            }
            continue;
        }
        match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let name = trim(&line[..colon]);
                if name.is_empty() || !name.iter().all(|&b| is_token_char(b)) {
                    bad_line = true;
                }
                fields.push(Field {
                    name: name.to_vec(),
                    value: trim(&line[colon + 1..]).to_vec(),
                });
            }
            None => bad_line = true,
        }
    }
    Head {
        start,
        fields,
        body_at,
        bad_line,
        folded,
    }
}

/// A parameter list with the optional whitespace around `;` and `=` taken
/// out where it is outside quotes and `<…>` (`tag  = 1` is `tag=1`: §25.1
/// SEMI and EQUAL allow it; the stack would keep the spaces in the name).
pub fn tighten_params(value: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(value.len());
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    let mut i = 0;
    while i < value.len() {
        let b = value[i];
        if escaped {
            escaped = false;
            out.push(b);
            i += 1;
            continue;
        }
        match b {
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'<' if !quoted => angle = true,
            b'>' if !quoted => angle = false,
            b';' | b'=' if !quoted && !angle => {
                while out.last().is_some_and(|&c| c == b' ' || c == b'\t') {
                    out.pop();
                }
                out.push(b);
                i += 1;
                while i < value.len() && (value[i] == b' ' || value[i] == b'\t') {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        out.push(b);
        i += 1;
    }
    out
}

/// RFC 3261 §25.1 `token` characters.
pub fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

pub fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |e| e + 1);
    &bytes[start..end.max(start)]
}

/// Split a header value on `sep` where it is not inside a quoted string or
/// `<…>` (so a URI's own commas and semicolons stay whole).
pub fn split_outside(value: &[u8], sep: u8) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    let mut from = 0;
    for (i, &b) in value.iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'<' if !quoted => angle = true,
            b'>' if !quoted => angle = false,
            _ if b == sep && !quoted && !angle => {
                parts.push(trim(&value[from..i]));
                from = i + 1;
            }
            _ => {}
        }
    }
    parts.push(trim(&value[from..]));
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_names_and_body() {
        let h = read(b"INVITE sip:a@b SIP/2.0\r\nTO :\r\n sip:a@b ;  tag = 1\r\nl: 4\r\n\r\nbody");
        assert_eq!(h.start, b"INVITE sip:a@b SIP/2.0");
        assert_eq!(h.fields.len(), 2);
        assert!(h.fields[0].is("to"));
        assert_eq!(h.fields[0].value, b"sip:a@b ;  tag = 1");
        assert!(h.fields[1].is("content-length"));
        assert_eq!(h.body_at, Some(59));
        assert!(!h.bad_line);
    }

    #[test]
    fn unterminated_and_bad_lines() {
        let h = read(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\nno colon here\r\n");
        assert_eq!(h.body_at, None);
        assert!(h.bad_line);
    }

    #[test]
    fn tightens_parameters_outside_quotes() {
        assert_eq!(
            tighten_params(b"\"a ; b\" <sip:x;y> ;  tag = 1 ; q= 0.3"),
            b"\"a ; b\" <sip:x;y>;tag=1;q=0.3"
        );
    }

    #[test]
    fn splits_outside_quotes_and_angles() {
        let parts = split_outside(b"\"a,b\" <sip:x;y,z>, sip:w", b',');
        assert_eq!(parts, vec![&b"\"a,b\" <sip:x;y,z>"[..], &b"sip:w"[..]]);
    }
}
