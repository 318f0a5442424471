use diesel::prelude::*;

use super::DbConnection;
use super::native::Native;
use super::schema::users;

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub login_uid: String,
    pub login_name: String,
    pub login_key: String,
    pub user_name: String,
    pub email: String,
    pub email_key: String,
    pub mobile: String,
    pub country_code: String,
    pub org_id: i64,
    pub org_name: String,
    pub domain_id: i64,
    pub password_hash: Option<String>,
    pub profile: String,
    pub created_at: i64,
}

/// The look-up form of a login name or e-mail address.
pub fn key(s: &str) -> String {
    s.trim().to_lowercase()
}

pub fn find_by_id(conn: &mut DbConnection, id: i64) -> QueryResult<Option<User>> {
    crate::per_backend!(conn, |c| users::table
        .find(id)
        .select(User::as_select())
        .get_result(c))
    .optional()
}

pub fn find_by_login(conn: &mut DbConnection, login: &str) -> QueryResult<Option<User>> {
    let k = key(login);
    if k.is_empty() {
        return Ok(None);
    }
    crate::per_backend!(conn, |c| users::table
        .filter(users::login_key.eq(&k).or(users::email_key.eq(&k)))
        .order(users::login_key.eq(&k).desc())
        .select(User::as_select())
        .first(c))
    .optional()
}

pub fn find_by_login_uid(conn: &mut DbConnection, login_uid: &str) -> QueryResult<Option<User>> {
    crate::per_backend!(conn, |c| users::table
        .filter(users::login_uid.eq(login_uid.trim()))
        .select(User::as_select())
        .get_result(c))
    .optional()
}

pub fn find_by_email(conn: &mut DbConnection, email: &str) -> QueryResult<Option<User>> {
    let k = key(email);
    if k.is_empty() {
        return Ok(None);
    }
    crate::per_backend!(conn, |c| users::table
        .filter(users::email_key.eq(k))
        .select(User::as_select())
        .get_result(c))
    .optional()
}

pub fn insert(conn: &mut DbConnection, user: &User) -> QueryResult<usize> {
    diesel::insert_into(users::table).values(user).exec(conn)
}

pub fn next_id(conn: &mut DbConnection) -> QueryResult<i64> {
    let max: Option<i64> = users::table.select(diesel::dsl::max(users::id)).one(conn)?;
    Ok(max.unwrap_or(0) + 1)
}

/// A mobile number as an international number: `+` and its digits when it is stored
/// with `+`, else with the country code in front; a number without either goes as
/// stored (digits only).
pub fn international(mobile: &str, country_code: &str) -> String {
    let digits: String = mobile.chars().filter(char::is_ascii_digit).collect();
    if mobile.trim_start().starts_with('+') {
        return format!("+{digits}");
    }
    match country_code.trim().trim_start_matches('+') {
        "" => digits,
        cc => format!("+{cc}{digits}"),
    }
}

impl User {
    /// The digits of the user's whole international number (see [`international`]).
    pub fn international_digits(&self) -> String {
        international(&self.mobile, &self.country_code)
            .trim_start_matches('+')
            .to_string()
    }
}

/// The user whose whole international number, country code and mobile, is these
/// digits. The mobile alone never matches a user who has a country code: those digits
/// are another number, in another country.
pub fn find_by_mobile_digits(conn: &mut DbConnection, digits: &str) -> QueryResult<Option<User>> {
    if digits.is_empty() {
        return Ok(None);
    }
    // Stored mobiles are the number after a country code of 1 to 3 digits, or the
    // whole number (with or without `+`).
    let mut stored: Vec<String> = (0..=3.min(digits.len() - 1))
        .map(|i| digits[i..].to_string())
        .collect();
    stored.push(format!("+{digits}"));
    let candidates: Vec<User> = crate::per_backend!(conn, |c| users::table
        .filter(users::mobile.eq_any(&stored))
        .order(users::id)
        .select(User::as_select())
        .load(c))?;
    Ok(candidates
        .into_iter()
        .find(|u| u.international_digits() == digits))
}
