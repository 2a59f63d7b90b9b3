"""Person linkage: one person_id and one family_id across every source.

Public API (other stages):
    jobs.link.run(spark, env, retrain=False, backend=None) -> dict   the whole stage
    thinkfamily.linkage.config.load_linkage_config(root)              conf/linkage.yaml
    thinkfamily.linkage.evaluate.evaluate_linkage(...)                metrics against truth
Tables written: silver/person_link, person, person_identifiable, person_address,
person_id_history, family, family_member, family_id_history (see docs/linkage.md).
"""
