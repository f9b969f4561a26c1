//! Request and response bodies of the v1 API (camelCase out, any case in).

use baton_domain::address::AddressInput;
use baton_domain::{Address, Problem, TenantName};
use baton_engine::{AccountUpdate, AccountView, ApiKeyView, CreatedApiKey, LicenseView, TenantInput, TenantView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Unix milliseconds as ISO-8601 UTC with milliseconds (`2020-12-31T00:00:00.000Z`).
pub fn iso_time(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&f).unwrap_or_default()
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    /// The bearer token (a JWT).
    pub access_token: String,
    /// Expiry in Unix milliseconds, as a string.
    pub expires: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct AddressDto {
    #[serde(default)]
    pub street_address: Option<String>,
    #[serde(default, alias = "extendedAddress")]
    pub extended_street_address: Option<String>,
    #[serde(default)]
    pub locality: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub post_code: Option<String>,
    /// ISO 3166-1 alpha-2; `UK` is accepted as `GB`.
    #[serde(default)]
    pub country: Option<String>,
}

impl AddressDto {
    fn input(&self) -> AddressInput<'_> {
        AddressInput {
            street_address: self.street_address.as_deref(),
            extended_street_address: self.extended_street_address.as_deref(),
            locality: self.locality.as_deref(),
            region: self.region.as_deref(),
            post_code: self.post_code.as_deref(),
            country: self.country.as_deref(),
        }
    }
}

impl From<&Address> for AddressDto {
    fn from(a: &Address) -> Self {
        Self {
            street_address: Some(a.street_address.clone()),
            extended_street_address: Some(a.extended_street_address.clone()),
            locality: Some(a.locality.clone()),
            region: Some(a.region.clone()),
            post_code: Some(a.post_code.clone()),
            country: a.country.map(|c| c.as_str().to_string()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LicenseDto {
    pub license_id: String,
    pub license_name: String,
    /// `-1` = unlimited.
    pub max_tenants: i64,
    pub max_transactions: i64,
    pub max_collect_apps: i64,
    pub max_payout_apps: i64,
}

impl From<&LicenseView> for LicenseDto {
    fn from(l: &LicenseView) -> Self {
        Self {
            license_id: l.license_id.clone(),
            license_name: l.license_name.clone(),
            max_tenants: l.max_tenants,
            max_transactions: l.max_transactions,
            max_collect_apps: l.max_collect_apps,
            max_payout_apps: l.max_payout_apps,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LicenseHistoryEntry {
    #[serde(flatten)]
    pub license: LicenseDto,
    pub valid_from: String,
    pub valid_to: Option<String>,
}

impl From<&LicenseView> for LicenseHistoryEntry {
    fn from(l: &LicenseView) -> Self {
        Self { license: l.into(), valid_from: iso_time(l.valid_from), valid_to: l.valid_to.map(iso_time) }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountDto {
    pub account_id: String,
    pub imburse_account_ref: String,
    pub company_name: String,
    pub billing_contact_first_name: String,
    pub billing_contact_last_name: String,
    pub billing_contact_address: AddressDto,
    pub tenant_creation_requires_approval: bool,
    pub license: LicenseDto,
}

impl From<&AccountView> for AccountDto {
    fn from(v: &AccountView) -> Self {
        let a = &v.account;
        Self {
            account_id: a.account_id.clone(),
            imburse_account_ref: a.account_ref.clone(),
            company_name: a.company_name.clone(),
            billing_contact_first_name: a.billing_first_name.clone(),
            billing_contact_last_name: a.billing_last_name.clone(),
            billing_contact_address: (&a.billing_address).into(),
            tenant_creation_requires_approval: a.tenant_creation_requires_approval,
            license: (&v.license).into(),
        }
    }
}

const MAX_NAME: usize = 200;

fn bounded(field: &'static str, value: Option<&str>, required: bool) -> Result<Option<String>, Problem> {
    let v = value.map(str::trim).unwrap_or("");
    if required && v.is_empty() {
        return Err(Problem::invalid_field("FIELD_REQUIRED", field, "{field} is required."));
    }
    if v.chars().count() > MAX_NAME || v.chars().any(char::is_control) {
        return Err(Problem::invalid_field(
            "FIELD_TOO_LONG",
            field,
            "{field} must be at most {limit} printable characters.",
        )
        .detail("limit", MAX_NAME.to_string()));
    }
    Ok(value.map(|_| v.to_string()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountUpdateRequest {
    pub company_name: Option<String>,
    pub billing_contact_first_name: Option<String>,
    pub billing_contact_last_name: Option<String>,
    pub billing_contact_address: Option<AddressDto>,
    pub tenant_creation_requires_approval: Option<bool>,
}

impl AccountUpdateRequest {
    /// Validates every field, reporting one problem per bad field.
    pub fn parse(&self) -> Result<AccountUpdate, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut take = |r: Result<Option<String>, Problem>| r.map_err(|p| problems.push(p)).ok().flatten();
        let company_name = take(bounded("companyName", self.company_name.as_deref(), false));
        let first = take(bounded("billingContactFirstName", self.billing_contact_first_name.as_deref(), true));
        let last = take(bounded("billingContactLastName", self.billing_contact_last_name.as_deref(), true));
        let address = match &self.billing_contact_address {
            None => None,
            Some(a) => Address::parse(&a.input(), "billingContactAddress.").map_err(|p| problems.extend(p)).ok(),
        };
        match (first, last) {
            (Some(billing_first_name), Some(billing_last_name)) if problems.is_empty() => Ok(AccountUpdate {
                company_name,
                billing_first_name,
                billing_last_name,
                billing_address: address,
                tenant_creation_requires_approval: self.tenant_creation_requires_approval,
            }),
            _ => Err(problems),
        }
    }
}

/// A tenant, in the documented flat form or with a nested `address`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantRequest {
    pub name: Option<String>,
    pub street_address: Option<String>,
    #[serde(alias = "extendedAddress")]
    pub extended_street_address: Option<String>,
    pub locality: Option<String>,
    pub region: Option<String>,
    pub post_code: Option<String>,
    pub country: Option<String>,
    pub address: Option<AddressDto>,
}

impl TenantRequest {
    pub fn parse(&self) -> Result<TenantInput, Vec<Problem>> {
        let mut problems = Vec::new();
        let name = TenantName::parse(self.name.as_deref()).map_err(|p| problems.push(p)).ok();
        let flat = AddressInput {
            street_address: self.street_address.as_deref(),
            extended_street_address: self.extended_street_address.as_deref(),
            locality: self.locality.as_deref(),
            region: self.region.as_deref(),
            post_code: self.post_code.as_deref(),
            country: self.country.as_deref(),
        };
        let has_flat = [
            flat.street_address,
            flat.extended_street_address,
            flat.locality,
            flat.region,
            flat.post_code,
            flat.country,
        ]
        .iter()
        .any(Option::is_some);
        // No address fields at all: keep the address as it is (or empty on create).
        let address = match (&self.address, has_flat) {
            (Some(nested), _) => Address::parse(&nested.input(), "address.").map(Some),
            (None, true) => Address::parse(&flat, "").map(Some),
            (None, false) => Ok(None),
        }
        .map_err(|p| problems.extend(p))
        .ok();
        match (name, address) {
            (Some(name), Some(address)) if problems.is_empty() => Ok(TenantInput { name, address }),
            _ => Err(problems),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantDto {
    pub tenant_id: String,
    /// The same as `tenantId` (both forms appear in the documentation).
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub address: AddressDto,
    /// `ACTIVE`, `PENDING_APPROVAL` or `REJECTED`.
    pub status: String,
    pub status_reason: Option<String>,
    pub created_at: String,
}

impl From<&TenantView> for TenantDto {
    fn from(t: &TenantView) -> Self {
        Self {
            tenant_id: t.tenant_id.clone(),
            id: t.tenant_id.clone(),
            account_id: t.account_id.clone(),
            name: t.name.clone(),
            address: (&t.address).into(),
            status: t.status.as_str().to_string(),
            status_reason: t.status_reason.clone(),
            created_at: iso_time(t.created_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct DecisionRequest {
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyRequestDto {
    /// Default `"API Key"`.
    pub name: Option<String>,
    pub roles: Option<Vec<String>>,
}

impl From<KeyRequestDto> for baton_engine::KeyRequest {
    fn from(d: KeyRequestDto) -> Self {
        Self { name: d.name, roles: d.roles.unwrap_or_default() }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyDto {
    pub account_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    pub name: String,
    pub public_key: String,
    /// Only in the response that creates the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    pub roles: Vec<String>,
}

impl From<&ApiKeyView> for ApiKeyDto {
    fn from(k: &ApiKeyView) -> Self {
        Self {
            account_id: k.account_id.clone(),
            tenant_id: k.tenant_id.clone(),
            name: k.name.clone(),
            public_key: k.public_key.clone(),
            private_key: None,
            roles: k.roles.names().into_iter().map(String::from).collect(),
        }
    }
}

impl From<&CreatedApiKey> for ApiKeyDto {
    fn from(c: &CreatedApiKey) -> Self {
        Self { private_key: Some(c.private_key.clone()), ..(&c.key).into() }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthDto {
    pub status: String,
    pub environment: String,
    pub version: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessDto {
    pub status: String,
    pub database: String,
}

/// The error envelope of every 4xx and 5xx response.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorEnvelope {
    /// Unix seconds.
    pub timestamp: i64,
    /// The platform's correlation id of the request.
    pub correlation_id: String,
    pub errors: Vec<ErrorEntry>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorEntry {
    pub error_code: String,
    pub message: String,
    pub message_template: String,
    /// Always `correlationId` (the caller's `X-Correlation-ID` if sent); validation adds `field`, `limit`.
    pub metadata: std::collections::BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn iso_time_has_milliseconds() {
        assert_eq!(super::iso_time(1_609_372_800_000), "2020-12-31T00:00:00.000Z");
        assert_eq!(super::iso_time(1_609_372_800_123), "2020-12-31T00:00:00.123Z");
    }
}
