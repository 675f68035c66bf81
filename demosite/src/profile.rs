//! Profiles derived from their id: a small integer hash picks every field
//! from fixed tables, so profile 12345 is the same on every run and machine
//! and no profile is ever stored.

use std::fmt::Write;

/// One person on the site, exactly as the profile page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// 1..=profiles.
    pub id: u64,
    /// Two or three CJK characters.
    pub name: String,
    /// 男 or 女.
    pub gender: String,
    /// Years, 20..=59.
    pub age: u32,
    /// Centimetres, 150..=194.
    pub height: u32,
    /// Kilograms, 42..=96.
    pub weight: u32,
    /// Monthly income band, e.g. `5001-8000元`.
    pub income: String,
    /// 未婚 / 离异 / 丧偶.
    pub marriage: String,
    /// Highest education.
    pub education: String,
    /// Job.
    pub occupation: String,
    /// Name of the city the profile is listed under.
    pub city: String,
}

// Every table entry is GBK-encodable and free of HTML metacharacters, so the
// pages can be written without escaping and re-encoded without loss.
const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀", "霞", "平", "刚", "桂", "英", "华", "玉", "兰", "萍", "红", "雪", "梅", "琳", "婷",
    "欣", "怡", "晨", "宇", "浩", "然", "思", "雨",
];
const GENDERS: &[&str] = &["男", "女"];
const INCOMES: &[&str] = &[
    "3000元以下",
    "3001-5000元",
    "5001-8000元",
    "8001-12000元",
    "12001-20000元",
    "20000元以上",
];
const MARRIAGES: &[&str] = &["未婚", "未婚", "未婚", "离异", "离异", "丧偶"];
const EDUCATIONS: &[&str] = &["高中及以下", "中专", "大专", "大学本科", "硕士", "博士"];
const OCCUPATIONS: &[&str] = &[
    "教师",
    "医生",
    "工程师",
    "销售",
    "会计",
    "设计师",
    "公务员",
    "律师",
    "护士",
    "程序员",
    "厨师",
    "司机",
    "自由职业",
    "企业主",
];

/// SplitMix64's finaliser: cheap, and every input bit affects every output
/// bit, so neighbouring ids get unrelated fields.
pub(crate) fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An independent pseudo-random number per (id, field).
pub(crate) fn field_hash(id: u64, salt: u64) -> u64 {
    mix(id ^ mix(salt))
}

fn pick(table: &'static [&'static str], id: u64, salt: u64) -> &'static str {
    table[(field_hash(id, salt) % table.len() as u64) as usize]
}

fn in_range(id: u64, salt: u64, low: u32, count: u32) -> u32 {
    low + (field_hash(id, salt) % u64::from(count)) as u32
}

/// Appends profile `id`'s name to `out`; used by list pages, which need only
/// the name and should not build a whole [`Profile`] per entry.
pub(crate) fn write_name(id: u64, out: &mut String) {
    out.push_str(pick(SURNAMES, id, 1));
    out.push_str(pick(GIVEN, id, 2));
    if !field_hash(id, 3).is_multiple_of(3) {
        out.push_str(pick(GIVEN, id, 4));
    }
}

pub(crate) fn age(id: u64) -> u32 {
    in_range(id, 6, 20, 40)
}

/// Profile `id`'s age after `edits` edits (see [`crate::generation`]): one
/// year older per edit, wrapping 59 to 20, so every edit changes a field
/// the parsers extract.
pub(crate) fn age_after(id: u64, edits: u64) -> u32 {
    20 + ((u64::from(age(id) - 20) + edits) % 40) as u32
}

/// Builds profile `id` as it is after `edits` edits: the age and the
/// occupation move on by one step per edit (both always differ from the
/// previous edit's, the tables having more than one entry).
pub(crate) fn build_after(id: u64, city: &str, edits: u64) -> Profile {
    let mut p = build(id, city);
    if edits > 0 {
        p.age = age_after(id, edits);
        let at = OCCUPATIONS
            .iter()
            .position(|o| *o == p.occupation)
            .unwrap_or(0) as u64;
        p.occupation = OCCUPATIONS[((at + edits) % OCCUPATIONS.len() as u64) as usize].to_owned();
    }
    p
}

/// Builds profile `id`; `city` is the name of the city it is listed under.
pub(crate) fn build(id: u64, city: &str) -> Profile {
    let mut name = String::with_capacity(9);
    write_name(id, &mut name);
    let gender = pick(GENDERS, id, 5);
    // Heights and weights lean by gender so the data looks plausible in a
    // search demo (e.g. "height:>180").
    let (height, weight) = if gender == "男" {
        (in_range(id, 7, 162, 33), in_range(id, 8, 55, 42))
    } else {
        (in_range(id, 7, 150, 30), in_range(id, 8, 42, 30))
    };
    Profile {
        id,
        name,
        gender: gender.to_owned(),
        age: age(id),
        height,
        weight,
        income: pick(INCOMES, id, 9).to_owned(),
        marriage: pick(MARRIAGES, id, 10).to_owned(),
        education: pick(EDUCATIONS, id, 11).to_owned(),
        occupation: pick(OCCUPATIONS, id, 12).to_owned(),
        city: city.to_owned(),
    }
}

impl Profile {
    /// Writes the `<table class="profile">` block of the profile page.
    pub(crate) fn write_table(&self, out: &mut String) {
        // `write!` into a String cannot fail.
        let _ = write!(
            out,
            "<table class=\"profile\" data-id=\"{id}\">\n\
             <tr><th>昵称</th><td data-field=\"name\">{name}</td></tr>\n\
             <tr><th>性别</th><td data-field=\"gender\">{gender}</td></tr>\n\
             <tr><th>年龄</th><td data-field=\"age\">{age}岁</td></tr>\n\
             <tr><th>身高</th><td data-field=\"height\">{height}cm</td></tr>\n\
             <tr><th>体重</th><td data-field=\"weight\">{weight}kg</td></tr>\n\
             <tr><th>月收入</th><td data-field=\"income\">{income}</td></tr>\n\
             <tr><th>婚况</th><td data-field=\"marriage\">{marriage}</td></tr>\n\
             <tr><th>学历</th><td data-field=\"education\">{education}</td></tr>\n\
             <tr><th>职业</th><td data-field=\"occupation\">{occupation}</td></tr>\n\
             <tr><th>居住地</th><td data-field=\"city\">{city}</td></tr>\n\
             </table>\n",
            id = self.id,
            name = self.name,
            gender = self.gender,
            age = self.age,
            height = self.height,
            weight = self.weight,
            income = self.income,
            marriage = self.marriage,
            education = self.education,
            occupation = self.occupation,
            city = self.city,
        );
    }
}
