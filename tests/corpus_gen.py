"""A deterministic news corpus for the tests, made from the repository alone.

A thousand articles in the shape of the shared archive (the 新闻联播 sections
with their 快讯 roundups, the bundled examples' sections), built from the
examples' sentences and a fixed vocabulary of news phrases: dated and undated
articles, titles shared by many articles, a few articles in traditional script,
exact duplicates under new ids and one long article. The same seed gives the
same articles, so the tests' expectations can name them.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import opencc

from searchsvc.cli import EXAMPLE_CORPUS

DOMESTIC, WORLD = "新闻联播 > 国内新闻", "新闻联播 > 国际新闻"
EXAMPLE_SECTIONS = ("工作动态 > 社会服务", "工作动态 > 机关党建", "作风建设 > 纪律教育", "思想建设 > 理论学习")
ROUNDUPS = {DOMESTIC: "国内联播快讯", WORLD: "国际联播快讯"}
COUNTRIES = ("法国", "巴西", "埃及", "印度尼西亚", "哈萨克斯坦", "南非", "新西兰", "阿根廷", "越南", "芬兰")
CITIES = ("北京", "上海", "杭州", "成都", "西安", "武汉", "广州", "长沙", "济南", "昆明")
# Topics: (title templates, body sentences). {c}: a country, {p}: a city.
TOPICS = {
    "diplomacy": (
        ("习近平会见{c}总统", "习近平同{c}领导人通电话", "国务院总理李强会见{c}客人", "国家副主席出席{c}国庆招待会"),
        ("国家主席习近平在人民大会堂会见{c}总统，双方就共建一带一路深入交换意见。",
         "国务院总理李强表示，中方愿同{c}加强发展战略对接。",
         "国家副主席强调，双方要推动务实合作取得更多成果。",
         "会见后，双方共同见证了多项合作文件的签署。"),
    ),
    "russia": (
        ("普京谈俄罗斯与乌克兰局势", "俄罗斯外长访问{c}", "乌克兰局势持续紧张"),
        ("俄罗斯总统普京表示，俄方愿通过谈判解决乌克兰问题。",
         "俄罗斯与{c}签署能源合作协议。",
         "乌克兰东部局势引发国际社会关注。",
         "俄罗斯代表在联合国安理会发言。"),
    ),
    "development": (
        ("{p}推动高质量发展", "推动长三角一体化发展取得新进展", "{p}5G网络建设提速", "乡村振兴战略在{p}落地见效"),
        ("{p}坚持新发展理念，推动经济社会高质量发展。",
         "长三角三省一市携手推动长三角一体化发展，区域协同水平不断提升。",
         "{p}已建成5G基站数万个，5G应用场景不断丰富。",
         "各地全面推进乡村振兴，农民收入持续增长。",
         "有关部门制定发展战略，加快培育新动能。"),
    ),
    "disability": (
        ("{p}残疾人就业帮扶成效明显", "{p}残联开展助残日活动", "残疾人康复服务覆盖{p}城乡"),
        ("{p}残联为残疾人提供职业技能培训，帮助残疾人实现就业。",
         "残疾人联合会组织志愿者走访困难残疾人家庭。",
         "{p}新建残疾人康复中心，残疾人康复服务更加便利。",
         "助残日当天，社会各界为残疾人送去关爱。",
         "残疾人就业保持稳中向好态势。"),
    ),
    "party": (
        ("{p}机关党建工作推进会召开", "加强新时代党的建设", "{p}开展主题党日活动"),
        ("{p}召开机关党建工作推进会，部署全年党建重点任务。",
         "会议强调，要以党的政治建设为统领，全面加强党的建设。",
         "各支部组织党员集中学习，交流心得体会。",
         "党建引领基层治理，服务群众更加精准。"),
    ),
    "health": (
        ("{p}统筹疫情防控和经济社会发展", "{p}加强疫情防控工作"),
        ("{p}科学精准做好疫情防控工作，保障群众生活物资供应。",
         "疫情防控期间，社区工作者坚守一线。"),
    ),
}
# Articles that name 党的建设 but never its abbreviation 党建 (the synonym test).
PARTY_ONLY_LONG = ("学习贯彻新时代党的建设总要求", "深入推进新时代党的建设新的伟大工程，以党的自我革命引领社会革命。")


def example_sentences() -> list[str]:
    """The bundled example articles' body sentences."""
    out = []
    for line in (EXAMPLE_CORPUS / "articles.jsonl").read_text(encoding="utf-8").splitlines():
        for s in json.loads(line)["body"].replace("\n", "").split("。"):
            if len(s.strip()) >= 8 and not any(c in s for c in "（）()"):     # whole sentences, no asides
                out.append(s.strip() + "。")
    return out


def generate(n: int = 1000, seed: int = 16) -> list[dict]:
    """``n`` articles (dicts in the corpus schema), the same for the same seed."""
    rnd = random.Random(seed)
    s2t = opencc.OpenCC("s2t")
    fillers = [f for f in example_sentences() if "主题党日" not in f]    # the examples' own (undated) case
    without_abbreviation = [f for f in fillers if "党建" not in f]
    start = dt.datetime(2021, 9, 1)
    articles: list[dict] = []
    for i in range(n):
        doc_id = f"gen-{i:04d}"
        if i % 37 == 36 and articles:          # an exact duplicate under a new id
            articles.append({**articles[rnd.randrange(len(articles))], "id": doc_id})
            continue
        roll = rnd.random()
        section = DOMESTIC if roll < 0.45 else WORLD if roll < 0.8 else rnd.choice(EXAMPLE_SECTIONS)
        topics = list(TOPICS)
        if section == WORLD:
            topic = rnd.choice(("diplomacy", "russia", "russia", "development"))
        elif section == DOMESTIC:
            topic = rnd.choice(("diplomacy", "russia", "development", "party", "health"))
        else:       # as in the examples: 残疾人 in social services, 党建 in the others
            topic = "disability" if section == EXAMPLE_SECTIONS[0] else rnd.choice(("party", "party", "development"))
        titles, sentences = TOPICS[topic]
        c, p = rnd.choice(COUNTRIES), rnd.choice(CITIES)
        body = [rnd.choice(sentences) for _ in range(rnd.randint(2, 4))]
        body += rnd.sample(fillers, 2)
        rnd.shuffle(body)
        if section in ROUNDUPS and rnd.random() < 0.35:
            title = ROUNDUPS[section]
            body += [rnd.choice(TOPICS[rnd.choice(topics)][1])]
        elif topic == "party" and rnd.random() < 0.15:
            title, body = PARTY_ONLY_LONG[0], [PARTY_ONLY_LONG[1], *rnd.sample(without_abbreviation, 2)]
        else:
            title = rnd.choice(titles)
        title = f"{title.format(c=c, p=p)}（{i}）" if rnd.random() < 0.5 else title.format(c=c, p=p)
        text = "\n".join(s.format(c=c, p=p) for s in body)
        if section.startswith("新闻联播"):
            text = "央视网消息（新闻联播）：" + text
        date = start + dt.timedelta(minutes=rnd.randrange(0, 240 * 24 * 60))
        if i % 11 == 0:           # February and March 2022 are the filters' test range
            date = dt.datetime(2022, 2, 1) + dt.timedelta(minutes=rnd.randrange(0, 59 * 24 * 60))
        article = {"id": doc_id, "title": title, "section": section, "source": "央视网",
                   "date": date.strftime("%Y-%m-%dT%H:%M"), "body": text}
        if i % 29 == 7:
            article["date"] = None                    # undated
        if i % 23 == 5:                               # written in traditional script
            article["title"], article["body"] = s2t.convert(title), s2t.convert(text)
        articles.append(article)
    articles[-1] = {**articles[-1], "body": "\n".join(rnd.choice(fillers) for _ in range(400))}    # long
    return articles


def write_jsonl(articles: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in articles), encoding="utf-8")
    return path
