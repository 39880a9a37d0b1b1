"""Fake but well-formed applicants for the demo: plausible Chinese names, resident ID numbers
(GB 11643-1999: 18 characters, a Chengdu area code, a real birth date, the ISO 7064 MOD 11-2
check digit), mobile numbers, and enterprises with a valid unified social credit code
(GB 32100-2015) or, before 2015, organisation code (GB 11714-1997). Nobody here exists.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

# Surnames weighted roughly by frequency (the commonest first), given-name characters as used.
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任"
            "沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
GIVEN = ("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏飞建国志明晓东海燕俊峰文博宇轩子涵雨欣浩然"
         "思远佳怡梓萱一鸣欣怡嘉豪诗琪天佑雅婷晨曦子豪梦瑶振宇凯婷宏伟立新春梅秋菊德华世杰家乐永红")
# Chengdu's county-level area codes (成都市 510100: 锦江 104, 青羊 105, 金牛 106, 武侯 107, 成华 108,
# 龙泉驿 112, 新都 114, 温江 115, 双流 122, 郫县 124), and a few elsewhere in Sichuan.
AREAS = ("510104", "510105", "510106", "510107", "510108", "510112", "510114", "510115", "510122", "510124",
         "510303", "510403", "510504", "510603", "510703", "511002", "511102", "511302", "511402", "511502")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
BRANDS = ("天府", "蜀信", "锦程", "高新", "峨眉", "青城", "芙蓉", "西岭", "金沙", "银杏", "龙泉", "望江", "卓越", "华创",
          "鼎盛", "新希望", "三叶草", "云端", "智汇", "博瑞", "川投", "蓉欧", "瑞丰", "众诚")
TRADES = ("科技", "软件", "电子", "信息技术", "生物医药", "商贸", "建筑工程", "餐饮管理", "文化传播", "物流", "光电",
          "网络科技", "环保科技", "教育咨询", "医疗器械", "机械设备")
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def id_check_digit(first17: str) -> str:
    """GB 11643's check character for the first 17 digits (ISO 7064 MOD 11-2)."""
    return ID_CHECK[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS)) % 11]


def valid_id_number(number: str) -> bool:
    if len(number) != 18 or not number[:17].isdigit():
        return False
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return number[17] == id_check_digit(number[:17])


def org_code(rng: random.Random) -> str:
    """An organisation code (组织机构代码, GB 11714): 8 characters and a check character."""
    body = "".join(rng.choice("0123456789") for _ in range(8))
    c = 11 - sum(int(ch) * w for ch, w in zip(body, ORG_WEIGHTS)) % 11
    return body + ("X" if c == 10 else "0" if c == 11 else str(c))


def uscc_check(first17: str) -> str:
    return USCC_CHARS[(31 - sum(USCC_CHARS.index(c) * w for c, w in zip(first17, USCC_WEIGHTS)) % 31) % 31]


def valid_uscc(code: str) -> bool:
    return len(code) == 18 and all(c in USCC_CHARS for c in code) and code[17] == uscc_check(code[:17])


def credit_code(rng: random.Random, area: str) -> str:
    """A unified social credit code (统一社会信用代码, GB 32100): 9 (registered by 工商) 1 (an
    enterprise), the area code, the organisation code, the check character."""
    first = "91" + area + org_code(rng)
    return first + uscc_check(first)


def person(rng: random.Random, on: date) -> dict[str, str]:
    """An adult applicant (18 to 70 on ``on``): name, resident ID number, mobile number."""
    name = rng.choice(SURNAMES[:30] if rng.random() < 0.7 else SURNAMES) + "".join(
        rng.choice(GIVEN) for _ in range(1 if rng.random() < 0.35 else 2))
    born = on - timedelta(days=rng.randrange(18 * 366, 70 * 365))
    first = f"{rng.choice(AREAS)}{born:%Y%m%d}{rng.randrange(0, 1000):03d}"
    return {"name": name, "id_number": first + id_check_digit(first),
            "phone": rng.choice(("138", "139", "135", "136", "150", "158", "186", "189", "177")) + f"{rng.randrange(10**8):08d}"}


def enterprise(rng: random.Random, on: date) -> dict[str, str]:
    """An enterprise applicant: its name, its code (a credit code from 2015 on, else an
    organisation code), and its contact's mobile number."""
    area = rng.choice(AREAS[:10])
    name = f"成都{rng.choice(BRANDS)}{rng.choice(TRADES)}有限公司"
    code = credit_code(rng, area) if on.year >= 2015 else org_code(rng)
    return {"name": name, "id_number": code, "phone": person(rng, on)["phone"]}


def staff_name(rng: random.Random) -> str:
    return person(rng, date(2008, 1, 1))["name"]
