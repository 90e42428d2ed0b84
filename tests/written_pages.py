"""Short news articles written for this project (in English and Japanese), in topic groups with
unrelated ones beside them: the fixtures for similar readings, stories and near-duplicates on text
whose relations are known. Used by the tests and by ``bench/similar.py``.

Each article is ``(title, [paragraphs])``; ``ENGLISH`` and ``JAPANESE`` map a topic to its
articles, and the topic ``"unrelated"`` holds articles related to nothing else here.
"""

from __future__ import annotations

Article = tuple[str, list[str]]

# The scenario: five iPS-cell transplant stories, a typhoon forecast and a new bridge.
ENGLISH: dict[str, list[Article]] = {
    "ips-cell-transplants": [
        ("iPS-derived heart muscle sheets transplanted into heart failure patient", [
            "Surgeons at a university hospital in Osaka placed thin sheets of heart muscle cells grown "
            "from induced pluripotent stem cells onto the heart of a man with severe heart failure.",
            "The team said the iPS-derived cells are expected to release proteins that help damaged "
            "muscle recover, and it will follow the patient for a year to confirm the transplant is safe.",
        ]),
        ("Corneal tissue made from iPS cells restores sight in clinical study", [
            "Researchers reported that patients who received corneal tissue grown from iPS cells could "
            "see more clearly a year after the transplant, with no rejection observed.",
            "The cornea study is one of several clinical trials in Japan testing tissue made from "
            "induced pluripotent stem cells in patients who have no other treatment.",
        ]),
        ("Parkinson's patients receive nerve cells grown from iPS cells", [
            "Doctors in Kyoto transplanted dopamine-producing nerve cells derived from induced "
            "pluripotent stem cells into the brains of patients with Parkinson's disease.",
            "Some patients showed better movement after the iPS cell transplant, the team said, and "
            "none developed tumours, a risk that researchers had watched closely.",
        ]),
        ("Retinal cells from iPS stem cells transplanted in eye disease trial", [
            "A team in Kobe transplanted retinal pigment cells made from iPS cells into patients with "
            "age-related macular degeneration, an eye disease that blurs central vision.",
            "The induced pluripotent stem cells came from donors in a cell bank, which researchers say "
            "makes the transplant cheaper and faster than growing cells from each patient.",
        ]),
        ("Knee cartilage grown from iPS cells implanted in first patients", [
            "Orthopaedic surgeons implanted cartilage made from induced pluripotent stem cells into "
            "the damaged knees of two patients, a first for the iPS cell treatment of joint injuries.",
            "The researchers hope the transplant will let patients avoid artificial knee surgery, and "
            "will check the safety of the cartilage cells over the next two years.",
        ]),
    ],
    "unrelated": [
        ("Typhoon forecast to approach western Japan over the weekend", [
            "The weather agency said a strong typhoon moving north over the Pacific could bring heavy "
            "rain and high waves to western Japan from Saturday.",
            "Ferry operators have cancelled some weekend sailings, and officials urged residents near "
            "rivers to check evacuation routes before the storm arrives.",
        ]),
        ("New bridge across Osaka Bay opens to traffic", [
            "A cable-stayed bridge linking two artificial islands in Osaka Bay opened to cars and buses "
            "on Monday after five years of construction.",
            "City officials said the crossing will cut travel times to the port by twenty minutes and "
            "ease congestion on the old harbour road during rush hours.",
        ]),
    ],
}

# 日本語: iPS細胞、台風、金融政策、プロ野球の記事と、どれにも関係しない記事。
JAPANESE: dict[str, list[Article]] = {
    "ips-cell-transplants": [
        ("iPS細胞から作った心筋シート、重い心不全の患者に移植", [
            "大阪の大学病院は、iPS細胞から作った心臓の筋肉の細胞をシート状にして、重い心不全の男性患者の心臓に"
            "貼り付ける手術を行ったと発表した。",
            "研究チームによると、移植した細胞が出す物質が傷ついた心臓の筋肉の回復を助けると期待されている。"
            "今後一年間、患者の経過を観察して安全性を確かめるという。",
        ]),
        ("iPS細胞で作った角膜を移植、視力が改善", [
            "iPS細胞から作った角膜の組織を移植した患者が、一年後に以前よりよく見えるようになったと、"
            "大学の研究チームが発表した。拒絶反応は見られなかった。",
            "角膜の移植はほかに治療法のない患者を対象にした臨床研究で、iPS細胞を使った再生医療の一つとして"
            "注目されている。",
        ]),
        ("パーキンソン病の患者にiPS細胞から作った神経細胞を移植", [
            "京都の病院の医師らは、iPS細胞から作ったドーパミンを出す神経細胞を、パーキンソン病の患者の脳に"
            "移植したと明らかにした。",
            "移植を受けた患者の一部で体の動きが改善し、心配されていた腫瘍はできなかったという。"
            "研究チームは再生医療として国の承認を目指す。",
        ]),
        ("iPS細胞から作った網膜の細胞を目の病気の患者に移植", [
            "神戸の研究チームは、iPS細胞から作った網膜の細胞を、視野の中心がぼやける加齢黄斑変性の患者に"
            "移植した。",
            "細胞は他人のiPS細胞を保管する細胞バンクから用意したもので、患者ごとに細胞を作るよりも費用と時間を"
            "大きく減らせるとしている。",
        ]),
    ],
    "typhoons": [
        ("台風10号、週末に西日本に接近のおそれ", [
            "気象庁によると、強い台風10号は太平洋を北上しており、土曜日から西日本に近づくおそれがある。"
            "大雨や高波、暴風に警戒するよう呼びかけている。",
            "フェリー会社は週末の一部の便を欠航にすると発表した。自治体は川の近くに住む人に、避難場所と"
            "避難の経路を確かめておくよう求めている。",
        ]),
        ("台風の大雨で川が氾濫、住宅に浸水被害", [
            "台風による記録的な大雨で九州の川が氾濫し、多くの住宅が水につかった。気象庁は大雨特別警報を出して"
            "最大級の警戒を呼びかけた。",
            "自治体は避難所を開設し、住民の避難を急いでいる。停電も広い範囲で続いている。",
        ]),
        ("台風一過、交通機関は運転を再開", [
            "台風が過ぎ去った翌朝、新幹線や在来線は点検を終えて順次運転を再開した。空の便も欠航が解消に"
            "向かっている。",
            "ただ暴風で倒れた木が道路をふさいだ地域もあり、気象庁は土砂災害にしばらく注意するよう求めている。",
        ]),
    ],
    "monetary-policy": [
        ("日銀、政策金利の引き上げを決定", [
            "日本銀行は金融政策決定会合で、政策金利を引き上げることを決めた。物価の上昇が続き、賃金も上がって"
            "いることを理由に挙げた。",
            "金利の引き上げを受けて、大手銀行は住宅ローンや預金の金利を見直す方針だ。",
        ]),
        ("日銀総裁「追加の利上げも検討」", [
            "日本銀行の総裁は記者会見で、物価と賃金の動きを見ながら追加の利上げを検討する考えを示した。",
            "市場では年内にも政策金利がもう一度引き上げられるとの見方が広がり、円相場は値上がりした。",
        ]),
        ("金利上昇で住宅ローンの返済額が増加", [
            "日銀の利上げを受けて、変動金利の住宅ローンを借りている家庭では毎月の返済額が増え始めている。",
            "専門家は、金利がさらに上がった場合に備えて、返済計画を見直すよう勧めている。",
        ]),
    ],
    "baseball": [
        ("大谷選手、今季40号ホームラン", [
            "大リーグ、ドジャースの大谷翔平選手は本拠地での試合で今シーズン40本目のホームランを打った。"
            "チームは五対二で勝った。",
            "大谷選手は試合後、「チームが勝てたことが一番うれしい」と話した。",
        ]),
        ("大谷選手、投手として復帰登板", [
            "ドジャースの大谷翔平選手が、ひじの手術のあと初めて投手として試合に登板し、三回を無失点に抑えた。",
            "監督は「球の勢いは十分だった」と評価し、今後は少しずつ投げる回数を増やす方針を示した。",
        ]),
        ("ドジャース、地区優勝を決める", [
            "大リーグのドジャースは勝利して、地区優勝を決めた。大谷翔平選手はこの試合でもホームランを打ち、"
            "チームの優勝に貢献した。",
            "選手たちはグラウンドで喜び合い、ファンの声援に手を振って応えた。",
        ]),
    ],
    "unrelated": [
        ("冬にぴったり、簡単なみそ汁の作り方", [
            "昆布と煮干しでだしをとり、豆腐とねぎを加えて、最後にみそを溶き入れれば完成です。",
            "みそは煮立たせないのが、香りよく仕上げるこつです。",
        ]),
        ("美術館で江戸時代の浮世絵展が開幕", [
            "東京の美術館で、江戸時代の浮世絵を集めた展覧会が始まった。個人の収集家から借りた作品など"
            "二百点余りが並んでいる。",
            "会期は来年一月まで。毎週月曜日は休館となる。",
        ]),
    ],
}

# A lightly edited copy of one Japanese article (a few words changed, a sentence added): a near-duplicate.
JAPANESE_COPY: Article = (
    "iPS細胞から作った心筋シート、重い心不全の男性に移植",
    [
        "大阪の大学病院は、iPS細胞から作った心臓の筋肉の細胞をシート状にして、重い心不全の男性患者の心臓に"
        "貼り付ける手術を行ったと発表した。",
        "研究チームによると、移植した細胞が出す物質が傷ついた心臓の筋肉の回復を助けると期待されている。"
        "今後一年間、患者の経過を注意深く観察して安全性を確かめるという。",
        "手術は予定どおり終わり、患者の容体は安定している。",
    ],
)


def groups(articles: dict[str, list[Article]]) -> list[tuple[str, Article]]:
    """(topic, article) pairs in a fixed order; "unrelated" articles have topic None-like "unrelated"."""
    return [(topic, article) for topic, items in articles.items() for article in items]
