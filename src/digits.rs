//! Decimal digits of the scripts portals and merchants write, as ASCII: Arabic-Indic (٠١٢),
//! Extended Arabic-Indic (Persian/Urdu ۰۱۲), Devanagari, Bengali, Thai, Lao, Myanmar and fullwidth
//! (what a Japanese, Chinese or Korean IME types). A code read from a page or an email, or typed on
//! an Arabic phone keyboard, is the same code in ASCII; portals' inputs take ASCII.

/// The first code point (the zero) of each block of ten decimal digits, in ascending order.
const ZEROS: [u32; 9] = [
    0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0E50, 0x0ED0, 0x1040, 0xFF10,
];

/// `c` as an ASCII digit when it is a decimal digit of one of those scripts.
pub fn ascii_digit(c: char) -> Option<char> {
    if c.is_ascii_digit() {
        return Some(c);
    }
    let code = u32::from(c);
    // Latin text, the common case, sits below every block.
    if code < ZEROS[0] {
        return None;
    }
    ZEROS
        .iter()
        .find(|zero| (**zero..**zero + 10).contains(&code))
        .and_then(|zero| char::from_digit(code - zero, 10))
}

/// `text` with every such digit in ASCII; everything else unchanged.
pub fn to_ascii_digits(text: &str) -> String {
    text.chars().map(|c| ascii_digit(c).unwrap_or(c)).collect()
}

/// A login that is a phone number typed on an Arabic, Persian or Thai keyboard, in ASCII (portals'
/// phone fields take ASCII); any other login unchanged. Only digits, spaces and `+-().` make a
/// phone number, so an e-mail or a login id is never rewritten.
pub fn phone_login_as_ascii(login: &str) -> std::borrow::Cow<'_, str> {
    let phone_like = login.chars().any(|c| ascii_digit(c).is_some())
        && login
            .chars()
            .all(|c| ascii_digit(c).is_some() || " +-().".contains(c));
    if phone_like && !login.is_ascii() {
        std::borrow::Cow::Owned(to_ascii_digits(login))
    } else {
        std::borrow::Cow::Borrowed(login)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phone_login_is_typed_in_ascii_and_nothing_else_is_rewritten() {
        assert_eq!(phone_login_as_ascii("٠٥٥١٢٣٤٥٦٧"), "0551234567");
        assert_eq!(phone_login_as_ascii("+٩٦٦ ٥٥ ١٢٣"), "+966 55 123");
        assert_eq!(
            phone_login_as_ascii("owner١@sandbox.test"),
            "owner١@sandbox.test"
        );
        assert_eq!(phone_login_as_ascii("sandbox_ceo01"), "sandbox_ceo01");
    }

    #[test]
    fn every_script_reads_as_ascii() {
        assert_eq!(to_ascii_digits("٤٨٢٩١٣"), "482913");
        assert_eq!(to_ascii_digits("۴۸۲۹۱۳"), "482913");
        assert_eq!(to_ascii_digits("４８２９"), "4829");
        assert_eq!(to_ascii_digits("๑๒๓"), "123");
        assert_eq!(to_ascii_digits("०९"), "09");
    }

    #[test]
    fn other_text_is_untouched() {
        let text = "رمز التحقق: abc-١٢ 인증번호 7";
        assert_eq!(to_ascii_digits(text), "رمز التحقق: abc-12 인증번호 7");
        // Superscripts and circled numbers are not decimal digits.
        assert_eq!(to_ascii_digits("²①"), "²①");
    }
}
