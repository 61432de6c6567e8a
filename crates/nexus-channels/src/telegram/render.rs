//! The plain-text fallback of a Telegram HTML message, sent when Telegram refuses its
//! entities: tags removed, character references decoded.

/// `html` as the text Telegram would have shown: tags stripped, `&lt; &gt; &amp; &quot;` and
/// numeric references decoded. Anything else (a bare `&`, an unknown name) stays as written.
pub(crate) fn plain_fallback(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        match c {
            '<' => match rest.find('>') {
                Some(end) => rest = &rest[end + 1..],
                None => {
                    out.push_str(rest);
                    rest = "";
                }
            },
            '&' => {
                let decoded = rest[1..]
                    .find(';')
                    .filter(|&i| i <= 10)
                    .and_then(|i| decode(&rest[1..=i]).map(|c| (c, i + 2)));
                match decoded {
                    Some((c, used)) => {
                        out.push(c);
                        rest = &rest[used..];
                    }
                    None => {
                        out.push('&');
                        rest = &rest[1..];
                    }
                }
            }
            c => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// The character of a reference's name (between `&` and `;`).
fn decode(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}
