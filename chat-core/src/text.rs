//! The one rule of every text a user writes, REST and socket alike: what characters it may hold.
//! No control characters (but line breaks and tabs where a text may have several lines), no
//! bidirectional controls (U+202E makes `exe.png` display as `gnp.exe`), no tag
//! characters (invisible letters that smuggle text past a reader and a filter), and a name or a
//! title must show something: one of only invisible characters (zero-width spaces, fillers)
//! is no name.

/// Whether a text may break lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// A name, a title, a tag, a destination: one line.
    One,
    /// A message, a bio, a description, a reason: line breaks and tabs allowed.
    Many,
}

/// Bidirectional formatting characters: embeddings and overrides (U+202A-U+202E), isolates
/// (U+2066-U+2069), marks (U+200E, U+200F, U+061C).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Tag characters (U+E0000-U+E007F): invisible, once for language tags, now for hiding text.
pub fn is_tag(c: char) -> bool {
    ('\u{E0000}'..='\u{E007F}').contains(&c)
}

/// Characters that show nothing: white space, zero-width and joining characters, word joiners,
/// the byte order mark, Hangul fillers, variation selectors, soft hyphen, combining grapheme
/// joiner, and the other default-ignorable code points a name could hide behind.
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || is_bidi_control(c)
        || is_tag(c)
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200D}'
                | '\u{2060}'..='\u{2064}'
                | '\u{206A}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0100}'..='\u{E01EF}'
        )
}

/// Why `text` may not be stored, if it may not (a short English phrase for a field problem).
pub fn problem(text: &str, lines: Lines) -> Option<&'static str> {
    for c in text.chars() {
        if is_bidi_control(c) {
            return Some("must not contain bidirectional control characters");
        }
        if is_tag(c) {
            return Some("must not contain tag characters");
        }
        if c.is_control() && !(lines == Lines::Many && matches!(c, '\n' | '\t' | '\r')) {
            return Some(match lines {
                Lines::One => "must not contain control characters",
                Lines::Many => "must not contain control characters other than line breaks and tabs",
            });
        }
    }
    None
}

/// Whether `text` shows anything at all.
pub fn is_visible(text: &str) -> bool {
    text.chars().any(|c| !is_invisible(c))
}

/// `problem`, and for a text that must say something (a name, a title, a message): one of
/// only invisible characters is refused too.
pub fn required_problem(text: &str, lines: Lines) -> Option<&'static str> {
    problem(text, lines).or_else(|| (!is_visible(text)).then_some("must contain visible characters"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_text_may_hold() {
        for ok in ["大理 Dali", "café", "👍🏽", "👨‍👩‍👧", "a\u{200D}b"] {
            assert_eq!(required_problem(ok, Lines::One), None, "{ok:?}");
        }
        assert_eq!(problem("两行\n文字\t", Lines::Many), None);
        assert!(problem("两行\n文字", Lines::One).is_some());
        for bad in ["a\u{0}b", "a\u{7}", "\u{1B}[31m", "a\u{85}b"] {
            assert!(problem(bad, Lines::Many).is_some(), "{bad:?}");
        }
        for bad in ["\u{202E}gnp.exe", "a\u{2066}b\u{2069}", "\u{200F}x", "x\u{061C}"] {
            assert_eq!(problem(bad, Lines::Many), Some("must not contain bidirectional control characters"), "{bad:?}");
        }
        assert_eq!(problem("hi\u{E0041}\u{E0042}", Lines::Many), Some("must not contain tag characters"));
        for invisible in ["\u{200B}", "\u{3164}\u{3164}", "\u{FEFF} \u{2060}", " ", "\u{115F}\u{1160}", "\u{FE0F}"] {
            assert_eq!(required_problem(invisible, Lines::One), Some("must contain visible characters"), "{invisible:?}");
            assert_eq!(problem(invisible, Lines::One), None, "an optional text may be empty-looking: {invisible:?}");
        }
    }
}
