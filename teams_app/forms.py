from __future__ import annotations

from django import forms

from teams_app.models import PRD, Membership, Project


class ProjectForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ["name", "slug", "description", "business_context", "constraints"]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            "business_context": forms.Textarea(attrs={"rows": 3}),
            "constraints": forms.Textarea(attrs={"rows": 3}),
        }
        help_texts = {"slug": "Short name used in URLs and on the command line, e.g. shop."}


class MembershipForm(forms.Form):
    username = forms.CharField(
        max_length=254, label="Username or email",
        help_text="An email nobody uses yet creates an account and sends a link to choose a password.",
    )
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.PRODUCT_OWNER)


class MembershipRoleForm(forms.Form):
    membership = forms.IntegerField(widget=forms.HiddenInput)
    role = forms.ChoiceField(choices=Membership.Role.choices)


class PRDForm(forms.ModelForm):
    class Meta:
        model = PRD
        fields = ["reference", "title", "status", "body"]
        widgets = {"body": forms.Textarea(attrs={"rows": 6})}
        help_texts = {"reference": "A PRD id such as PRD-123 or a link to the document."}
