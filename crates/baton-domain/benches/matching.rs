//! Rule matching: one full evaluation = `first_match` + the resolution of the matched rule,
//! for collect and payout drafts of 50 rules, over a mixed set of queries.
//!
//! World: 10 apps with 6 payment methods each, 3 reward groups of 40 rewards each (120
//! rewards in a catalog of 64-hex ids), looked up through hash maps as the engine would.
//! The drafts put specific rules first and broad ones last, so the matching rule is often
//! deep in the list; a share of queries matches nothing.
//!
//! Run: `cargo bench -p baton-domain --bench matching`. Criterion prints the time per
//! iteration (one pass over all queries) and the throughput in evaluations (elements) per second.

use std::collections::HashMap;
use std::hint::black_box;

use baton_domain::schemes::{
    first_match, resolve_collect, resolve_payout, AppEntry, GroupMember, MatchQuery, MatchType, RewardGroupRef,
    RewardTerms, Rule,
};
use baton_domain::{AppId, Country, Currency, ValueType};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rust_decimal::Decimal;

const RULES: usize = 50;
const APPS: usize = 10;
const METHODS_PER_APP: usize = 6;
const GROUPS: usize = 3;
const REWARDS_PER_GROUP: usize = 40;
const QUERIES: usize = 256;

const METHOD_POOL: [&str; 12] = [
    "VISA",
    "MASTERCARD",
    "DISCOVER",
    "MAESTRO",
    "AMERICAN-EXPRESS",
    "PAYPAL",
    "SEPA_DIRECT_DEBIT",
    "BACS_DIRECT_DEBIT",
    "IDEAL",
    "SOFORT",
    "APPLE_PAY",
    "GOOGLE_PAY",
];

/// A small deterministic generator (xorshift64*), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    /// Up to `max` distinct items, in the items' order.
    fn some_of<T: Clone + PartialEq>(&mut self, items: &[T], max: usize) -> Vec<T> {
        let n = self.below(max + 1);
        let mut out: Vec<T> = Vec::with_capacity(n);
        while out.len() < n {
            let item = self.pick(items);
            if !out.contains(&item) {
                out.push(item);
            }
        }
        out
    }
}

/// The queries' currencies and countries are drawn from these (weighted towards EUR and GBP).
const CURRENCIES: [Currency; 6] =
    [Currency::EUR, Currency::EUR, Currency::GBP, Currency::GBP, Currency::USD, Currency::CHF];
const COUNTRIES: [Country; 10] = [
    Country::DE,
    Country::FR,
    Country::ES,
    Country::IT,
    Country::NL,
    Country::GB,
    Country::IE,
    Country::US,
    Country::CH,
    Country::AT,
];

fn money(rng: &mut Rng, max_units: u64) -> Decimal {
    Decimal::new((rng.next() % (max_units * 100)) as i64 + 1, 2)
}

struct World {
    methods: HashMap<AppId, Vec<String>>,
    groups: HashMap<String, Vec<GroupMember>>,
    rewards: HashMap<String, RewardTerms>,
    app_ids: Vec<AppId>,
    group_ids: Vec<String>,
}

fn world(rng: &mut Rng) -> World {
    let app_ids: Vec<AppId> = (0..APPS).map(|i| AppId::parse(&format!("APP_{i:02}")).unwrap()).collect();
    let methods = app_ids
        .iter()
        .map(|id| {
            let mut list: Vec<String> = Vec::new();
            while list.len() < METHODS_PER_APP {
                let m = rng.pick(&METHOD_POOL);
                if !list.iter().any(|x| x == m) {
                    list.push(m.to_string());
                }
            }
            (id.clone(), list)
        })
        .collect();

    let mut rewards = HashMap::new();
    let mut groups = HashMap::new();
    let mut group_ids = Vec::new();
    for g in 0..GROUPS {
        let group_id = format!("7f3c2a10-0000-4000-8000-{g:012}");
        let mut members = Vec::new();
        for _ in 0..REWARDS_PER_GROUP {
            let reward_id = format!("{:016x}{:016x}{:016x}{:016x}", rng.next(), rng.next(), rng.next(), rng.next());
            let fixed = rng.chance(50);
            let low = money(rng, 60);
            let terms = RewardTerms {
                reward_id: reward_id.clone(),
                currency: rng.pick(&CURRENCIES),
                countries: {
                    let mut c = rng.some_of(&COUNTRIES, 3);
                    if c.is_empty() {
                        c.push(rng.pick(&COUNTRIES));
                    }
                    c
                },
                value_type: if fixed { ValueType::FixedValue } else { ValueType::VariableValue },
                fixed_value: fixed.then(|| Decimal::new(rng.pick(&[5, 10, 15, 20, 25, 50, 100]), 0)),
                min_value: (!fixed).then_some(low),
                max_value: (!fixed).then(|| low + money(rng, 500)),
                whole_amount_required: rng.chance(20),
                active: rng.chance(90),
            };
            rewards.insert(reward_id.clone(), terms);
            members.push(GroupMember { reward_id, enabled: rng.chance(90) });
        }
        groups.insert(group_id.clone(), members);
        group_ids.push(group_id);
    }
    World { methods, groups, rewards, app_ids, group_ids }
}

/// 50 rules: 45 specific ones (1–2 currencies, 0–4 countries, a range bounded below and mostly
/// above), then four broad ones on one currency each, and a last one for any currency in
/// GB, IE or US. Queries that none of them takes (e.g. CHF in DE) match nothing.
fn draft(rng: &mut Rng, w: &World, payout: bool) -> Vec<Rule> {
    let mut rules = Vec::with_capacity(RULES);
    for i in 0..RULES {
        let broad = i >= RULES - 5;
        let (currencies, countries, low, high) = if i == RULES - 1 {
            (vec![], vec![Country::GB, Country::IE, Country::US], None, None)
        } else if broad {
            (vec![CURRENCIES[(i * 2) % CURRENCIES.len()]], vec![], None, None)
        } else {
            let mut currencies = rng.some_of(&CURRENCIES, 2);
            if currencies.is_empty() {
                currencies.push(rng.pick(&CURRENCIES));
            }
            let low = money(rng, 300);
            let high = low + money(rng, 200);
            (currencies, rng.some_of(&COUNTRIES, 4), Some(low), rng.chance(80).then_some(high))
        };
        let apps = rng
            .some_of(&w.app_ids, 3)
            .into_iter()
            .map(|app_id| {
                let excluded_payment_methods =
                    if rng.chance(30) { vec![w.methods[&app_id][rng.below(METHODS_PER_APP)].clone()] } else { vec![] };
                AppEntry { app_id, priority: rng.chance(80).then(|| rng.below(5) as i64), excluded_payment_methods }
            })
            .collect::<Vec<_>>();
        let reward_groups = if payout {
            let mut refs: Vec<RewardGroupRef> = rng
                .some_of(&[0usize, 1, 2], GROUPS)
                .into_iter()
                .map(|g| {
                    let members = &w.groups[&w.group_ids[g]];
                    let exclusions = (0..rng.below(3)).map(|_| members[rng.below(members.len())].reward_id.clone());
                    RewardGroupRef { reward_group_id: w.group_ids[g].clone(), exclusions: exclusions.collect() }
                })
                .collect();
            if refs.is_empty() {
                refs.push(RewardGroupRef { reward_group_id: w.group_ids[0].clone(), exclusions: vec![] });
            }
            refs
        } else {
            vec![]
        };
        let apps = if apps.is_empty() && !payout { vec![AppEntry::new(w.app_ids[0].clone())] } else { apps };
        rules.push(Rule {
            priority: Some(i as i64),
            currencies,
            countries,
            low_value_inclusive: low,
            high_value_inclusive: high,
            apps,
            reward_groups,
        });
    }
    rules
}

fn queries(rng: &mut Rng) -> Vec<MatchQuery> {
    (0..QUERIES)
        .map(|_| MatchQuery {
            // Mostly whole amounts (as reward payouts tend to be), some with cents.
            amount: if rng.chance(60) { Decimal::new(rng.below(300) as i64 + 1, 0) } else { money(rng, 500) },
            currency: rng.pick(&CURRENCIES),
            country: rng.pick(&COUNTRIES),
        })
        .collect()
}

fn describe(name: &str, rules: &[Rule], qs: &[MatchQuery]) {
    let hits: Vec<usize> = qs.iter().filter_map(|q| first_match(rules, q)).collect();
    let mean = hits.iter().sum::<usize>() as f64 / hits.len().max(1) as f64;
    let deep = hits.iter().filter(|&&i| i >= RULES - 5).count();
    eprintln!(
        "{name}: {} queries, {} match (mean rule index {mean:.1}; {deep} on the 5 broad rules at the end), {} match none",
        qs.len(),
        hits.len(),
        qs.len() - hits.len()
    );
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let w = world(&mut rng);
    let collect_rules = draft(&mut rng, &w, false);
    let payout_rules = draft(&mut rng, &w, true);
    let qs = queries(&mut rng);
    describe("collect draft", &collect_rules, &qs);
    describe("payout draft", &payout_rules, &qs);
    let offered: usize = qs
        .iter()
        .filter_map(|q| first_match(&payout_rules, q).map(|i| (i, q)))
        .map(|(i, q)| {
            resolve_payout(
                &payout_rules[i],
                q,
                MatchType::Max,
                |id| w.groups.get(id).map(Vec::as_slice),
                |id| w.rewards.get(id),
            )
            .len()
        })
        .sum();
    eprintln!("payout draft: {offered} rewards offered over all queries (Max)");

    let mut group = c.benchmark_group("matching");
    group.throughput(Throughput::Elements(qs.len() as u64));

    group.bench_function("first_match", |b| {
        b.iter(|| {
            for q in &qs {
                black_box(first_match(black_box(&collect_rules), q));
            }
        })
    });

    group.bench_function("collect_evaluation", |b| {
        b.iter(|| {
            for q in &qs {
                let options = first_match(black_box(&collect_rules), q)
                    .map(|i| resolve_collect(&collect_rules[i], |id| w.methods.get(id).map(Vec::as_slice)))
                    .unwrap_or_default();
                black_box(options);
            }
        })
    });

    for match_type in [MatchType::Exact, MatchType::Max] {
        group.bench_function(format!("payout_evaluation_{}", match_type.as_str().to_lowercase()), |b| {
            b.iter(|| {
                for q in &qs {
                    let rewards = first_match(black_box(&payout_rules), q)
                        .map(|i| {
                            resolve_payout(
                                &payout_rules[i],
                                q,
                                match_type,
                                |id| w.groups.get(id).map(Vec::as_slice),
                                |id| w.rewards.get(id),
                            )
                        })
                        .unwrap_or_default();
                    black_box(rewards);
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
