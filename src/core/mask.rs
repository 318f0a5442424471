//! Masking of destinations for messages, logs and listings, as the legacy messages do:
//! `Vis*********@sy****.com`, `*******219`.

/// Keeps the first three characters of the local part and the first two of the domain
/// name; the rest of the domain (from its first dot) stays.
pub fn email(address: &str) -> String {
    let address = address.trim();
    let Some((local, domain)) = address.rsplit_once('@') else {
        return stars(address, 0, 0);
    };
    let (name, rest) = match domain.find('.') {
        Some(i) => domain.split_at(i),
        None => (domain, ""),
    };
    let keep_local = if local.chars().count() > 3 { 3 } else { 1 };
    let keep_name = if name.chars().count() > 2 { 2 } else { 1 };
    format!(
        "{}@{}{}",
        stars(local, keep_local, 0),
        stars(name, keep_name, 0),
        rest
    )
}

/// Keeps the last three digits; formatting (`+`, spaces, dashes) is dropped, so no
/// separator takes a digit's place.
pub fn phone(number: &str) -> String {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    let keep = if digits.len() > 4 { 3 } else { 0 };
    stars(&digits, 0, keep)
}

/// Masks a destination of either kind.
pub fn destination(address: &str) -> String {
    if address.contains('@') {
        email(address)
    } else {
        phone(address)
    }
}

fn stars(s: &str, keep_start: usize, keep_end: usize) -> String {
    let n = s.chars().count();
    if n <= keep_start + keep_end {
        return "*".repeat(n);
    }
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if i < keep_start || i >= n - keep_end {
                c
            } else {
                '*'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_like_the_legacy_message() {
        assert_eq!(email("Vishnu.kumar@syntel.com"), "Vis*********@sy****.com");
        assert_eq!(phone("9876543219"), "*******219");
    }

    #[test]
    fn short_and_odd_values_never_leak_whole() {
        assert_eq!(email("ab@x.io"), "a*@*.io");
        assert_eq!(email("a@b.c"), "*@*.c");
        assert_eq!(email("no-at-sign"), "**********");
        assert_eq!(phone("1234"), "****");
        assert_eq!(email("Ünïcødé@exämple.org"), "Ünï****@ex*****.org");
        assert_eq!(destination("+919876543219"), "*********219");
        assert_eq!(phone("+90 532 123 45 67"), "*********567");
        assert_eq!(
            destination("user@mail.example.com"),
            "use*@ma**.example.com"
        );
    }
}
