//! The field cipher legacy mobile clients use for values such as `EncryptedEmailID`:
//! AES-256-CBC with PKCS#7 padding, the ciphertext in base64; key and IV from
//! configuration. Off unless configured.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::Engine;

use crate::config::FieldCipherSettings;

type Enc = cbc::Encryptor<aes::Aes256>;
type Dec = cbc::Decryptor<aes::Aes256>;

#[derive(Clone)]
pub struct FieldCipher {
    key: [u8; 32],
    iv: [u8; 16],
}

impl std::fmt::Debug for FieldCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FieldCipher(redacted)")
    }
}

impl FieldCipher {
    pub fn new(key: [u8; 32], iv: [u8; 16]) -> Self {
        FieldCipher { key, iv }
    }

    pub fn from_settings(s: &FieldCipherSettings) -> Result<FieldCipher, String> {
        let key = s
            .key
            .as_deref()
            .ok_or("key is required when the cipher is enabled")?;
        let iv =
            s.iv.as_deref()
                .ok_or("iv is required when the cipher is enabled")?;
        let key = crate::core::keys::parse_key(key, 32).map_err(|e| format!("key {e}"))?;
        let iv = crate::core::keys::parse_key(iv, 16).map_err(|e| format!("iv {e}"))?;
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| "key must be exactly 32 bytes".to_string())?;
        let iv: [u8; 16] = iv
            .try_into()
            .map_err(|_| "iv must be exactly 16 bytes".to_string())?;
        Ok(FieldCipher { key, iv })
    }

    /// The clear text of a base64 field, or None when it is not one of ours.
    pub fn decrypt(&self, text: &str) -> Option<String> {
        let ct = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()?;
        let plain = Dec::new(&self.key.into(), &self.iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(&ct)
            .ok()?;
        String::from_utf8(plain).ok()
    }

    pub fn encrypt(&self, text: &str) -> String {
        let ct = Enc::new(&self.key.into(), &self.iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(text.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(ct)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_foreign_text() {
        let c = FieldCipher::new([9u8; 32], [1u8; 16]);
        let e = c.encrypt("Vishnu.kumar@syntel.com");
        assert_ne!(e, "Vishnu.kumar@syntel.com");
        assert_eq!(c.decrypt(&e).as_deref(), Some("Vishnu.kumar@syntel.com"));
        assert_eq!(c.decrypt("not base64 at all"), None);
        let other = FieldCipher::new([8u8; 32], [1u8; 16]);
        assert_ne!(
            other.decrypt(&e).as_deref(),
            Some("Vishnu.kumar@syntel.com")
        );
    }

    #[test]
    fn a_guid_encrypts_to_64_base64_characters_like_the_legacy_transaction_id() {
        let c = FieldCipher::new([9u8; 32], [1u8; 16]);
        assert_eq!(c.encrypt("77cd9db9-1e1c-4e86-860e-df5d42973afa").len(), 64);
    }
}
