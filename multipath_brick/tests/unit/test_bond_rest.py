"""The oVirt REST bodies: the feature page's shapes, round trips, and hostile XML refused."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from multipath_brick.bond import DataCenter, rest
from multipath_brick.exception import BondError, BondValueError, BondXmlError
from multipath_brick.tests.unit import bondutil as u

# The feature page's POST body, with its placeholders filled in.
FEATURE_POST = """<iscsi_bond>
 <name>fromRest</name>
 <storage_connections>
  <storage_connection id="c1" />
  <storage_connection id="c2" />
 </storage_connections>
 <networks>
  <network id="n1" />
 </networks>
</iscsi_bond>"""
FEATURE_PUT = """<iscsi_bond>
 <name>fromRest</name>
 <description>myDescription</description>
</iscsi_bond>"""


def test_feature_page_post_body_builds_the_bond():
    body = rest.parse_bond(FEATURE_POST)
    assert body == rest.BondBody(None, "fromRest", None, ("n1",), ("c1", "c2"))
    dc = u.datacenter()
    assert body.name is not None and body.networks is not None
    bond = dc.new_bond("b1", body.name, "", body.networks, body.storage_connections or ())
    edit = dc.add_bond(bond)
    assert edit.datacenter is not None
    assert edit.datacenter.bond("b1").network_names == {"san1"}


def test_feature_page_put_body_changes_only_name_and_description():
    body = rest.parse_bond_update(FEATURE_PUT)
    assert (body.name, body.description) == ("fromRest", "myDescription")
    dc = u.datacenter(u.bond()).update_bond("b1", name=body.name, description=body.description)
    assert dc.bond("b1").description == "myDescription"
    with pytest.raises(BondXmlError) as info:
        rest.parse_bond_update(FEATURE_POST)
    assert info.value.element == "iscsi_bond/networks"
    assert "only name and description" in str(info.value)


def test_feature_page_storage_connection_body():
    assert rest.parse_reference('<storage_connection id="c3"></storage_connection>') == "c3"
    assert rest.parse_reference(b'<network id="n2"/>', "network") == "n2"
    assert rest.reference_to_xml("c3") == '<storage_connection id="c3"/>'
    with pytest.raises(BondXmlError, match="no id"):
        rest.parse_reference("<storage_connection/>")
    with pytest.raises(BondXmlError, match="expected <storage_connection>"):
        rest.parse_reference('<network id="n1"/>')


def test_written_bodies_have_the_feature_page_shape():
    b = u.bond()
    assert rest.bond_to_xml(b, with_id=False) == (
        "<iscsi_bond><name>san</name><description></description>"
        '<storage_connections><storage_connection id="c1"/><storage_connection id="c2"/>'
        '</storage_connections><networks><network id="n1"/></networks></iscsi_bond>'
    )
    assert rest.update_to_xml("san", "a & b <c>") == (
        "<iscsi_bond><name>san</name><description>a &amp; b &lt;c&gt;</description></iscsi_bond>"
    )
    assert rest.parse_bond_update(rest.update_to_xml("san", "a & b <c>")).description == (
        "a & b <c>"
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(u.datacenters())
def test_bonds_round_trip_through_xml(dc: DataCenter):
    bodies = rest.parse_bonds(rest.bonds_to_xml(dc.iscsi_bonds))
    assert len(bodies) == len(dc.iscsi_bonds)
    for bond, body in zip(dc.iscsi_bonds, bodies, strict=True):
        assert body.id is not None and body.name is not None
        rebuilt = dc.new_bond(
            body.id,
            body.name,
            body.description or "",
            body.networks or (),
            body.storage_connections or (),
        )
        assert rebuilt == bond
        assert rest.parse_bond(rest.bond_to_xml(bond).encode("utf-8")) == body


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<iscsi_bond><name>&lol9;</name></iscsi_bond>"""


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (BILLION_LAUGHS, "<!DOCTYPE>"),
        ('<!DOCTYPE x SYSTEM "file:///etc/passwd"><iscsi_bond/>', "<!DOCTYPE>"),
        (
            '<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            "<iscsi_bond><name>&xxe;</name></iscsi_bond>",
            "<!DOCTYPE>",
        ),
        ('<!DOCTYPE x [<!ENTITY % p SYSTEM "http://x/e.dtd"> %p;]><iscsi_bond/>', "<!DOCTYPE>"),
        ("<iscsi_bond><name>&xxe;</name></iscsi_bond>", "line 1 column 18"),
        ("<iscsi_bond><name>san</name>", "line 1 column 28"),
        ("<iscsi_bond/><iscsi_bond/>", "line 1 column 13"),
        ("", "line 1 column 0"),
        ("<iscsi_bond><foo/></iscsi_bond>", "iscsi_bond/foo[1]"),
        ('<iscsi_bond x="1"/>', "iscsi_bond/@x"),
        ("<iscsi_bond>text</iscsi_bond>", "iscsi_bond"),
        ("<iscsi_bond><name>a</name><name>b</name></iscsi_bond>", "iscsi_bond/name[2]"),
        ("<iscsi_bond><name><b/></name></iscsi_bond>", "iscsi_bond/name[1]/b[1]"),
        ("<iscsi_bond><networks>n1</networks></iscsi_bond>", "iscsi_bond/networks[1]"),
        (
            "<iscsi_bond><networks><storage_connection id='c1'/></networks></iscsi_bond>",
            "iscsi_bond/networks[1]/storage_connection[1]",
        ),
        ("<a:iscsi_bond xmlns:a='urn:x'/>", "a:iscsi_bond"),
        ("<iscsi_bond xmlns='urn:x'/>", "iscsi_bond/@xmlns"),
        ("<storage_connection id='c1'/>", "storage_connection"),
        ("<iscsi_bond>" + "<name>" * 9 + "</name>" * 9 + "</iscsi_bond>", "name[1]"),
        ("<iscsi_bond>" + " " * (rest.MAX_BODY + 1) + "</iscsi_bond>", "(body)"),
    ],
)
def test_hostile_or_malformed_xml_is_refused_clearly(body: str, where: str):
    with pytest.raises(BondXmlError) as info:
        rest.parse_bond(body)
    assert where in info.value.element
    assert str(info.value).startswith("XML body refused at ")
    # The refusal never echoes the body (it may be huge or hostile).
    assert "lol" not in str(info.value) and "passwd" not in str(info.value)


def test_bad_values_in_xml_name_the_field():
    with pytest.raises(BondValueError) as info:
        rest.parse_bond("<iscsi_bond><name>my bond</name></iscsi_bond>")
    assert info.value.field == "name"
    with pytest.raises(BondValueError) as info:
        rest.parse_bond('<iscsi_bond><networks><network id="../x"/></networks></iscsi_bond>')
    assert info.value.field == "id"
    with pytest.raises(BondValueError, match="appears twice"):
        rest.parse_bond(
            '<iscsi_bond><networks><network id="n1"/><network id="n1"/></networks></iscsi_bond>'
        )
    with pytest.raises(BondXmlError, match="expected str or bytes"):
        rest.parse_bond(None)  # type: ignore[arg-type]


def test_character_references_and_other_encodings_are_plain_xml():
    body = "<iscsi_bond><name>s&#x61;n</name><description>&lt;&amp;</description></iscsi_bond>"
    assert (rest.parse_bond(body).name, rest.parse_bond(body).description) == ("san", "<&")
    utf16 = '<?xml version="1.0" encoding="UTF-16"?><iscsi_bond><name>réseau</name></iscsi_bond>'
    assert rest.parse_bond(utf16.encode("utf-16")).name == "réseau"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_any_body_gives_a_value_or_a_bond_error(body: str | bytes):
    for parse in (rest.parse_bond, rest.parse_bonds, rest.parse_reference):
        try:
            parse(body)
        except BondError:
            pass


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "<iscsi_bond>",
                "</iscsi_bond>",
                "<name>",
                "</name>",
                "<networks>",
                "</networks>",
                '<network id="n1"/>',
                "<description>",
                "</description>",
                "san",
                "&amp;",
                "&x;",
                "<!DOCTYPE a>",
                "<![CDATA[x]]>",
                "<!-- c -->",
                "<?pi x?>",
            ]
        ),
        max_size=12,
    )
)
def test_near_miss_bodies_give_a_value_or_a_bond_error(parts: list[str]):
    try:
        rest.parse_bond("".join(parts))
    except BondError:
        pass
