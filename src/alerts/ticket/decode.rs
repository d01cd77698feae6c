//! An ESC/POS interpreter: what a printer would print from the bytes, for tests and previews.

use super::*;

/// What [`decode`] saw the printer print.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Printed {
    /// Printed lines, top to bottom; RTL lines in display order.
    pub lines: Vec<String>,
    /// Payloads of the QR symbols printed.
    pub qr: Vec<String>,
    pub cut: bool,
    /// Every `ESC t n`, in order.
    pub code_tables: Vec<u8>,
    /// Indices into `lines` of lines with emphasized (bold) text.
    pub bold_lines: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown or unsupported command {bytes:02X?} at byte {at}")]
    UnknownCommand { at: usize, bytes: Vec<u8> },
    #[error("command at byte {at} is truncated")]
    Truncated { at: usize },
    #[error("bytes at {at} are no character of the code table or Kanji mode in force")]
    InvalidText { at: usize },
    #[error("QR print at byte {at} without stored UTF-8 data")]
    InvalidQr { at: usize },
}

#[derive(Default)]
struct State {
    out: Printed,
    line: String,
    line_bold: bool,
    bold: bool,
    table: u8,
    intl: u8,
    kanji: bool,
    shift_jis: bool,
    qr_data: Vec<u8>,
}

impl State {
    fn flush(&mut self) {
        if take(&mut self.line_bold) {
            self.out.bold_lines.push(self.out.lines.len());
        }
        self.out.lines.push(take(&mut self.line));
    }

    /// Decodes the character at `b[i]` (≥ 0x20) and returns its length in bytes.
    fn text(&mut self, b: &[u8], i: usize) -> Result<usize, DecodeError> {
        let x = b[i];
        let (len, enc) = match x {
            0x5C if self.intl == 13 => (1, None),
            0x20..=0x7E => (1, Some(WINDOWS_1252)),
            _ if !self.kanji || (self.shift_jis && (0xA1..=0xDF).contains(&x)) => {
                let enc = match (self.table, x) {
                    (1, 0xA1..=0xDF) => Some(SHIFT_JIS),
                    (16, _) => Some(WINDOWS_1252),
                    (45, _) => Some(WINDOWS_1250),
                    (50, _) => Some(WINDOWS_1256),
                    (21, 0xA1..=0xFB) => Some(WINDOWS_874),
                    _ => return Err(DecodeError::InvalidText { at: i }),
                };
                (1, enc)
            }
            _ if self.shift_jis => (2, Some(SHIFT_JIS)),
            _ if self.intl == 13 => (2, Some(EUC_KR)),
            _ if b.get(i + 1).is_some_and(u8::is_ascii_digit) => (4, Some(GB18030)),
            _ => (2, Some(GB18030)),
        };
        let s = match enc {
            None => "₩".to_string(),
            Some(enc) => b
                .get(i..i + len)
                .and_then(|seq| enc.decode_without_bom_handling_and_without_replacement(seq))
                .filter(|s| s.chars().count() == 1 && !s.chars().any(char::is_control))
                .ok_or(DecodeError::InvalidText { at: i })?
                .into_owned(),
        };
        self.line.push_str(&s);
        self.line_bold |= self.bold;
        Ok(len)
    }
}

/// Interprets an ESC/POS stream as [`escpos`] writes it; any other command is an
/// error. Kanji mode decodes as the printer model would: Shift JIS after `FS C 1`
/// (Japanese models), KS C 5601 under `ESC R 13` (Korean models), else GB18030.
pub fn decode(bytes: &[u8]) -> Result<Printed, DecodeError> {
    let mut st = State::default();
    let mut i = 0;
    while let Some(&x) = bytes.get(i) {
        if x == LF {
            st.flush();
            i += 1;
            continue;
        }
        if x >= 0x20 && x != 0x7F {
            i += st.text(bytes, i)?;
            continue;
        }
        let at = |k: usize| bytes.get(i + k).copied();
        let truncated = DecodeError::Truncated { at: i };
        let unknown = || DecodeError::UnknownCommand {
            at: i,
            bytes: bytes[i..bytes.len().min(i + 3)].to_vec(),
        };
        let len = match (x, at(1)) {
            (ESC | GS | FS, None) => return Err(truncated),
            (ESC, Some(b'@')) | (FS, Some(b'&' | b'.')) => 2,
            (ESC, Some(b't' | b'R' | b'E' | b'a' | b'd' | b'!')) | (GS, Some(b'!')) => 3,
            (FS, Some(b'C')) => 3,
            (GS, Some(b'V')) if at(2) >= Some(65) => 4,
            (GS, Some(b'V')) => 3,
            (GS, Some(b'(')) if at(2) == Some(b'k') => match (at(3), at(4)) {
                (Some(lo), Some(hi)) => 5 + usize::from(lo) + 256 * usize::from(hi),
                _ => return Err(truncated),
            },
            _ => return Err(unknown()),
        };
        match bytes.get(i..i + len).ok_or(truncated)? {
            [ESC, b'@'] => {
                st = State {
                    out: take(&mut st.out),
                    ..State::default()
                }
            }
            [FS, b'&'] => st.kanji = true,
            [FS, b'.'] => st.kanji = false,
            [FS, b'C', 1 | 2 | 49 | 50] => st.shift_jis = true,
            [ESC, b't', n] => {
                st.table = *n;
                st.out.code_tables.push(*n);
            }
            [ESC, b'R', n @ (0 | 13)] => st.intl = *n,
            [ESC, b'E', n] => st.bold = n & 1 == 1,
            [ESC, b'a', 0..=2 | 48..=50] | [ESC | GS, b'!', _] => {}
            [ESC, b'd', n] => {
                let blank = usize::from(*n).saturating_sub(usize::from(!st.line.is_empty()));
                if !st.line.is_empty() {
                    st.flush();
                }
                (0..blank).for_each(|_| st.flush());
            }
            [GS, b'V', 0 | 1 | 48 | 49] | [GS, b'V', 65 | 66, _] => {
                if !st.line.is_empty() {
                    st.flush();
                }
                st.out.cut = true;
            }
            [GS, b'(', b'k', _, _, body @ ..] => match body {
                [49, 65, 49..=51, 0] | [49, 67, 1..=16] | [49, 69, 48..=51] => {}
                [49, 80, 48, data @ ..] => st.qr_data = data.to_vec(),
                [49, 81, 48] => match String::from_utf8(take(&mut st.qr_data)) {
                    Ok(s) if !s.is_empty() => st.out.qr.push(s),
                    _ => return Err(DecodeError::InvalidQr { at: i }),
                },
                _ => return Err(unknown()),
            },
            _ => return Err(unknown()),
        }
        i += len;
    }
    if !st.line.is_empty() {
        st.flush();
    }
    Ok(st.out)
}
