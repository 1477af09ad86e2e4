"""The 29 prompt templates and their rendering."""

from models.prompts import IMG, TEMPLATES, PromptRenderer, eval_templates, train_templates


def test_29_templates_with_paper_ids():
    assert len(TEMPLATES) == 29
    assert [p for p in TEMPLATES if p.startswith("A")] == [f"A-{i}" for i in range(1, 10)]
    assert [p for p in TEMPLATES if p.startswith("B")] == [f"B-{i}" for i in range(1, 9)]
    assert [p for p in TEMPLATES if p.startswith("C")] == [f"C-{i}" for i in range(1, 13)]


def test_unseen_prompts_are_held_out_of_training():
    assert eval_templates("sequential") == ["A-3", "A-9"] and "A-9" not in train_templates("sequential")
    assert eval_templates("direct") == ["B-5", "B-8"] and "B-8" not in train_templates("direct")
    assert eval_templates("explanation") == ["C-3", "C-12"] and "C-12" not in train_templates("explanation")
    assert "A-3" in train_templates("sequential") and len(train_templates("explanation")) == 11


def test_history_mentions_carry_image_tokens_and_keep_the_most_recent(tiny):
    r = PromptRenderer(tiny, image_tokens=2, max_history=3)
    p = r.render("A-3", user=4, history=[10, 11, 12, 13, 14], target="15")
    assert p.text.startswith("Here is the purchase history list of user_5 :")
    # items 12, 13, 14 are shown as P5 ids 13, 14, 15
    assert p.text.endswith(f": 13 {IMG} {IMG} , 14 {IMG} {IMG} , 15 {IMG} {IMG} try to recommend next item to the user")
    assert p.image_items == (12, 13, 14)
    assert p.text.count(IMG) == 2 * len(p.image_items)


def test_text_only_prompts_drop_photo_slots(tiny):
    r = PromptRenderer(tiny, image_tokens=0)
    p = r.render("B-1", user=0, item=7, target="yes")
    assert p.text == "Will user_1 likely to interact with item_8 ?" and p.image_items == ()
    p = r.render("B-5", user=0, candidates=[3, 4], target="4")
    assert p.text.endswith("? 4 , 5") and IMG not in p.text


def test_explanation_prompts_use_the_record(tiny):
    rev = tiny.review_split("train")[0]
    r = PromptRenderer(tiny, image_tokens=1)
    p = r.render("C-12", user=rev.user, item=rev.item, review=rev, target=rev.explanation)
    assert f"feature word {rev.feature} ," in p.text and f"{int(round(rev.rating))} -star" in p.text
    assert p.image_items == (rev.item,)
    assert r.target_text("C-7", review=rev) == f"{int(round(rev.rating))} , {rev.explanation}"
    assert r.parse_item(r.item(9)) == 9 and r.parse_item("no") is None and r.parse_item("0") is None


def test_user_desc_is_the_name_by_default_and_the_id_on_request(tiny):
    by_name, by_id = PromptRenderer(tiny, 0), PromptRenderer(tiny, 0, user_desc="id")
    u = next(i for i, user in enumerate(tiny.users) if user.name.strip())
    name = tiny.users[u].name.strip()
    for pid in ("B-5", "A-4"):
        assert name in by_name.render(pid, user=u, candidates=[0, 1], history=[0], target="1").text
        text = by_id.render(pid, user=u, candidates=[0, 1], history=[0], target="1").text
        assert name not in text and f"user_{u + 1} " in text
