use diesel::prelude::*;

use super::DbConnection;
use super::schema::users;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
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
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()
}

pub fn find_by_login(conn: &mut DbConnection, login: &str) -> QueryResult<Option<User>> {
    let k = key(login);
    if k.is_empty() {
        return Ok(None);
    }
    users::table
        .filter(users::login_key.eq(&k).or(users::email_key.eq(&k)))
        .order(users::login_key.eq(&k).desc())
        .select(User::as_select())
        .first(conn)
        .optional()
}

pub fn find_by_email(conn: &mut DbConnection, email: &str) -> QueryResult<Option<User>> {
    let k = key(email);
    if k.is_empty() {
        return Ok(None);
    }
    users::table
        .filter(users::email_key.eq(k))
        .select(User::as_select())
        .first(conn)
        .optional()
}

pub fn insert(conn: &mut DbConnection, user: &User) -> QueryResult<usize> {
    diesel::insert_into(users::table).values(user).execute(conn)
}

pub fn next_id(conn: &mut DbConnection) -> QueryResult<i64> {
    let max: Option<i64> = users::table
        .select(diesel::dsl::max(users::id))
        .first(conn)?;
    Ok(max.unwrap_or(0) + 1)
}

/// The user whose mobile number, with or without its country code, is these digits.
pub fn find_by_mobile_digits(conn: &mut DbConnection, digits: &str) -> QueryResult<Option<User>> {
    if digits.is_empty() {
        return Ok(None);
    }
    // Country codes are 1 to 3 digits: the number may follow any of them.
    let tails: Vec<&str> = (0..=3.min(digits.len() - 1))
        .map(|i| &digits[i..])
        .collect();
    let candidates: Vec<User> = users::table
        .filter(users::mobile.eq_any(&tails))
        .order(users::id)
        .select(User::as_select())
        .load(conn)?;
    Ok(candidates.into_iter().find(|u| {
        u.mobile == digits
            || digits
                .strip_suffix(u.mobile.as_str())
                .is_some_and(|cc| !cc.is_empty() && cc == u.country_code.trim_start_matches('+'))
    }))
}
