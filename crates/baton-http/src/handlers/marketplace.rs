//! The marketplace, installed apps, reward accounts, reward groups, the rewards catalog
//! (SPEC §4.4, §4.5, §4.7, §4.8) and the icons Baton serves for them.

pub mod apps;
pub mod assets;
pub mod dto;
pub mod rewards;

use baton_domain::Problem;
use baton_engine::Principal;

use crate::error::{ApiError, ApiResult};

/// The OpenAPI document of this area, merged into the whole API's (`docs.rs`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        apps::list_apps,
        apps::list_apps_post,
        apps::get_app,
        apps::get_app_post,
        apps::install_app,
        apps::installed_apps,
        apps::installed_app,
        apps::configure_app,
        apps::uninstall_app,
        rewards::create_account,
        rewards::get_account,
        rewards::deposit_funds,
        rewards::create_reward_group,
        rewards::list_reward_groups,
        rewards::get_reward_group,
        rewards::update_reward_group,
        rewards::delete_reward_group,
        rewards::catalog,
        rewards::search_catalog,
        assets::app_icon,
        assets::payment_method_icon,
        assets::reward_image,
    ),
    components(schemas(
        dto::AppDto,
        dto::PaymentMethodDto,
        dto::InstalledAppSummaryDto,
        dto::InstalledAppDto,
        dto::MarketplaceFilterParams,
        dto::RewardAccountRequestDto,
        dto::RewardAccountDto,
        dto::DepositRequest,
        dto::RewardGroupRequest,
        dto::RewardGroupDto,
        dto::RewardGroupEntryDto,
        dto::CatalogDto,
        dto::CatalogRewardDto,
        dto::CatalogBrandDto,
        dto::CatalogImageUrlDto,
        dto::BrandRequirementsDto,
        dto::LocalisedText,
    ))
)]
pub struct MarketplaceApi;

/// The caller's tenant: every route of this area requires a tenant token.
fn tenant_of(caller: &Principal) -> ApiResult<&str> {
    caller
        .tenant_id
        .as_deref()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a tenant route was reached without a tenant token")))
}

/// Query parameters as sent. Names match ignoring case (the documented clients are
/// .NET-style); a parameter may be repeated.
pub(crate) struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    fn new(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    fn named<'a>(&'a self, names: &'a [&str]) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(|(k, _)| names.iter().any(|n| k.trim().eq_ignore_ascii_case(n))).map(|(_, v)| v.as_str())
    }

    /// Every non-blank comma-separated value of the parameters called any of `names`.
    fn csv(&self, names: &[&str]) -> Vec<String> {
        self.named(names)
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from)
            .collect()
    }

    /// The last non-blank value of the parameters called any of `names`.
    fn single(&self, names: &[&str]) -> Option<String> {
        self.named(names).map(str::trim).filter(|v| !v.is_empty()).last().map(String::from)
    }
}

/// Parses every value, collecting the problems of all of them.
fn parse_all<T>(
    values: Vec<String>,
    parse: impl Fn(&str) -> Result<T, Problem>,
    problems: &mut Vec<Problem>,
) -> Vec<T> {
    values
        .iter()
        .filter_map(|v| match parse(v) {
            Ok(t) => Some(t),
            Err(p) => {
                problems.push(p);
                None
            }
        })
        .collect()
}
